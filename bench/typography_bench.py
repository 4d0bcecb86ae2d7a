#!/usr/bin/env python3
"""Speed of the French typography rules on real post bodies, and a byte-for-byte check.

    python bench/typography_bench.py [--count 300] [--seed 1] [--rounds 5]
                                     [--save-reference FILE] [--reference FILE]
                                     [--baseline PATH/TO/typography.py]

Makes a synthetic corpus (bench/make_corpus.py, --categories 8 --tags 25)
in a temporary folder, renders each post's body and Summary with the `markdown`
package and pelicanconf.MARKDOWN (as Pelican's reader does), and adds the five seed
posts (content/posts/*.md). Then it times `fix_html` over every fragment, best of
--rounds, and prints microseconds per post (body + summary: the two calls the
plugin makes per post).

--save-reference FILE writes the outputs (JSON) so a later run of a changed
blogcore/typography.py can be compared with --reference FILE: any fragment whose output differs
is reported and the exit status is 1. --baseline PATH times another copy of
typography.py on the same fragments in the same run (e.g. the original, kept outside
the project) and compares outputs with it too.
"""
import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import markdown

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MAKE_CORPUS = ROOT / "bench" / "make_corpus.py"

from pelicanconf import MARKDOWN  # noqa: E402
from blogcore.header import split_header  # noqa: E402
from blogcore.typography import fix_html  # noqa: E402


def renderer():
    config = dict(MARKDOWN)
    configs = config.pop("extension_configs", {})
    return markdown.Markdown(extensions=list(configs), extension_configs=configs, **config)


def fragments_of(path: Path, md) -> list[str]:
    """The post's HTML body and, if it has one, its Summary rendered as Markdown."""
    header, body = split_header(path.read_text(encoding="utf-8"))
    summary = next((entry for entry in header.entries if entry.name == "summary"), None)
    out = [md.reset().convert(body)]
    if summary:
        out.append(md.reset().convert("\n".join([summary.value, *summary.more])))  # as Pelican joins its lines
    return out


def corpus(count: int, seed: int) -> dict[str, list[str]]:
    md = renderer()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(MAKE_CORPUS), str(count), tmp, "--seed", str(seed),
                        "--categories", "8", "--tags", "25"], check=True)
        posts = {p.name: fragments_of(p, md) for p in sorted(Path(tmp).glob("*.md"))}
    seeds = {f"seed/{p.name}": fragments_of(p, md) for p in sorted((ROOT / "content/posts").glob("*.md"))}
    return posts, seeds


def best_time(function, fragments, rounds):
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for fragment in fragments:
            function(fragment)
        best = min(best, time.perf_counter() - start)
    return best


def load(path: Path):
    spec = importlib.util.spec_from_file_location("baseline_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fix_html


def compare(name, outputs, expected) -> int:
    bad = [key for key in expected if outputs.get(key) != expected[key]]
    bad += [key for key in outputs if key not in expected]
    if bad:
        print(f"DIFFERENT from {name}: {len(bad)} of {len(expected)} posts, e.g. {bad[:5]}")
    else:
        print(f"identical to {name}: {len(expected)} posts")
    return len(bad)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--save-reference", type=Path)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--baseline", type=Path)
    args = parser.parse_args()

    posts, seeds = corpus(args.count, args.seed)
    everything = {**posts, **seeds}
    fragments = [f for fs in posts.values() for f in fs]
    outputs = {key: [fix_html(f) for f in fs] for key, fs in everything.items()}
    size = sum(map(len, fragments))
    print(f"{len(posts)} posts + {len(seeds)} seed posts, {len(fragments)} fragments, "
          f"{size / len(posts) / 1000:.1f} kB of HTML per post")

    failures = 0
    if args.save_reference:
        args.save_reference.write_text(json.dumps(outputs, ensure_ascii=False), encoding="utf-8")
        print(f"reference saved to {args.save_reference}")
    if args.reference:
        failures += compare(args.reference, outputs, json.loads(args.reference.read_text(encoding="utf-8")))

    ours = best_time(fix_html, fragments, args.rounds) / len(posts) * 1e6
    if args.baseline:
        baseline = load(args.baseline)
        failures += compare(args.baseline, outputs,
                            {key: [baseline(f) for f in fs] for key, fs in everything.items()})
        theirs = best_time(baseline, fragments, args.rounds) / len(posts) * 1e6
        print(f"baseline: {theirs:8.1f} µs per post (best of {args.rounds})")
    print(f"fix_html: {ours:8.1f} µs per post (best of {args.rounds})")
    if args.baseline:
        print(f"speed-up: {theirs / ours:.2f}x")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
