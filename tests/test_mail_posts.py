"""The records `make send` reads are remade only for posts that changed, and always match a fresh build."""
import json
import shutil
import sqlite3

from tests.conftest import build


def records(output):
    db = sqlite3.connect(output.parent / "var" / "posts" / "records.sqlite3")
    try:
        return {slug: {**json.loads(record), "stamp": stamp} for slug, stamp, record in db.execute("SELECT * FROM posts")}
    finally:
        db.close()


def remade(content, output) -> str:
    """Build verbosely and return the number mail_posts says it remade."""
    log = build(content, output, args=["-v"])
    text = " ".join((log.stdout + log.stderr).split())
    return text.split(" remade)")[0].rsplit("(", 1)[1]


def test_records_follow_edits_and_reuse_the_rest(content_copy, tmp_path):
    output = tmp_path / "site" / "output"
    assert remade(content_copy, output) == "5"
    first = records(output)
    assert sorted(first) == sorted(r["slug"] for r in first.values())
    assert remade(content_copy, output) == "0"
    assert records(output) == first

    post = content_copy / "posts" / "2015-11-le-cr-aime.md"
    post.write_text(post.read_text(encoding="utf-8").replace("Un peu de silence.", "Un peu de silence, enfin."),
                    encoding="utf-8")
    assert remade(content_copy, output) == "1"
    edited = records(output)
    assert "enfin." in edited["le-cr-aime"]["content_html"]
    assert {slug for slug in first if edited[slug] != first[slug]} == {"le-cr-aime"}

    shutil.copytree(content_copy, tmp_path / "fresh-content")
    assert remade(tmp_path / "fresh-content", tmp_path / "fresh" / "output") == "5"
    fresh = records(tmp_path / "fresh" / "output")
    strip = lambda rs: {slug: {**r, "source_path": "", "stamp": ""} for slug, r in rs.items()}  # noqa: E731
    assert strip(fresh) == strip(edited)

    (content_copy / "posts" / "2009-08-infamie-du-fail.md").unlink()
    assert remade(content_copy, output) == "0"
    assert sorted(records(output)) == sorted(set(edited) - {"infamie-du-fail"})
