"""The records `make send` reads are rewritten only when their post changed, and always match a fresh build."""
import json
import shutil

from tests.conftest import build


def records(folder):
    return {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json") if not p.name.startswith(".")}


def test_records_follow_edits_and_skip_the_rest(content_copy, tmp_path):
    output = tmp_path / "site" / "output"
    folder = output.parent / "var" / "posts"
    build(content_copy, output)
    first = records(folder)
    assert len(first) == len(list(content_copy.glob("posts/*.md")))
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}

    build(content_copy, output)  # nothing changed: no record rewritten
    assert records(folder) == first
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json") if p.name in first} == \
        {name: mtime for name, mtime in mtimes.items() if name in first}

    post = content_copy / "posts" / "2015-11-le-cr-aime.md"
    post.write_text(post.read_text(encoding="utf-8").replace("Un peu de silence.", "Un peu de silence, enfin."),
                    encoding="utf-8")
    build(content_copy, output)
    edited = records(folder)
    assert "enfin." in json.loads(edited["le-cr-aime.json"])["content_html"]
    assert {name for name in first if edited[name] != first[name]} == {"le-cr-aime.json"}

    fresh = tmp_path / "fresh" / "output"
    shutil.copytree(content_copy, tmp_path / "fresh-content")
    build(tmp_path / "fresh-content", fresh)
    fresh_records = records(fresh.parent / "var" / "posts")
    assert {name: json.loads(text) | {"source_path": ""} for name, text in fresh_records.items()} == \
        {name: json.loads(text) | {"source_path": ""} for name, text in edited.items()}
