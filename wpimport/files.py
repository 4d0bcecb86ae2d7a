"""Write every file of an import, or none.

Each file is first written under a temporary name beside its target (same folder, so
same disk), then all are renamed into place: an import stopped by a full disk or a
missing permission leaves content/ as it was, temporary files and new folders removed.
"""
import os
import shutil
from pathlib import Path


def write_all(texts: dict, copies: dict):
    """texts: Path -> text (UTF-8); copies: destination Path -> source Path."""
    staged, made = [], []
    try:
        for target in [*texts, *copies]:
            _make_parents(Path(target).parent, made)
            temporary = target.with_name(f".{target.name}.wpimport-{os.getpid()}")
            staged.append((temporary, target))
            if target in texts:
                temporary.write_text(texts[target], encoding="utf-8", newline="\n")
            else:
                shutil.copy2(copies[target], temporary)
        for temporary, target in staged:
            os.replace(temporary, target)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise


def _make_parents(folder: Path, made: list):
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        made.append(path)
