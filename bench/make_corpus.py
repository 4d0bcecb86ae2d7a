#!/usr/bin/env python3
"""Write a synthetic corpus of French opinion posts, for build benchmarks.

Paragraphs are drawn from the seed posts in tests/fixtures/seeds (the scraped
texts of the five real posts), so the text has the length, accents and
punctuation of the real blog.

    make_corpus.py COUNT OUT_DIR [--seed N] [--categories N] [--tags N]

Each post is a Pelican Markdown file with Title, Date, Category, Tags, Slug,
Author and Summary metadata, two subheadings, a list, a link and a quote.
"""
import argparse
import random
from pathlib import Path

# The repository's own copy of the seed texts: the generator reads nothing outside the repository.
SEEDS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "seeds"
CATEGORY_NAMES = [
    "Humeurs Marketing", "éthique.biz", "Relation client", "Réseaux sociaux",
    "Fidélisation", "Expérience client", "Service après-vente", "Données & vie privée",
    "Stratégie", "Coups de gueule", "Marques", "Numérique", "Emailing", "Publicité",
]
TAG_WORDS = [
    "crm", "linkedin", "fidélité", "service client", "e-réputation", "anniversaire",
    "twitter", "apple", "ponzi", "humour", "b2b", "people centric", "sav", "confiance",
    "emailing", "rgpd", "données", "marques", "call-center", "black friday", "minitel",
    "air france", "dell", "comcast", "capital", "cyrano", "facebook", "like", "bisous",
    "plage", "vacances", "miles", "gold", "interflora", "wikipédia", "tgv", "tram",
]


def paragraphs():
    out = []
    for path in sorted(SEEDS.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if len(line) > 80:
                out.append(line)
    if len(out) < 8:  # a post takes 8 paragraphs: fail here rather than write an empty corpus
        raise SystemExit(f"make_corpus.py: only {len(out)} seed paragraph(s) in {SEEDS}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--categories", type=int, default=6)
    parser.add_argument("--tags", type=int, default=25)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    paras = paragraphs()
    cats = CATEGORY_NAMES[: args.categories]
    tags = TAG_WORDS[: args.tags]
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        body = rnd.sample(paras, 8)
        title = rnd.choice(paras)[:60].rsplit(" ", 1)[0].replace(":", " ")
        date = f"{2010 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d} {8 + i % 12:02d}:{i % 60:02d}"
        text = "\n\n".join([
            body[0], "## Le constat", body[1], body[2],
            "- " + body[3][:120] + "\n- " + body[4][:120] + "\n- un dernier point",
            "## Et maintenant ?", "> " + body[5], body[6] + " [Un lien](https://example.org/ref).",
            body[7],
        ])
        meta = [
            f"Title: Billet n° {i} : {title}",
            f"Date: {date}",
            f"Category: {rnd.choice(cats)}",
            f"Tags: {', '.join(rnd.sample(tags, 3))}",
            f"Slug: billet-{args.seed}-{i}",
            "Author: François",
            f"Summary: {body[0][:200]}",
        ]
        (args.out / f"billet-{i:05d}.md").write_text("\n".join(meta) + "\n\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
