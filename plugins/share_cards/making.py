"""Make the cards a build lacks, in forked processes when there are many (a cold build of a big blog).

Each card is written to a temporary name in the store and renamed into place, so a card that exists
is whole, even if a build is killed or two run at once.
"""
import multiprocessing
import os

from . import drawing

MIN_PARALLEL = 16  # fewer cards than this are made in the main process: forking would cost more


def make_one(entry: str, job: tuple, folder: str) -> str | None:
    """Make one card into folder/entry; a problem (naming the post's file and line) or None."""
    if job[0] == "card":
        _, title, rubrique, sitename, style = job
        data = drawing.draw_card(title, rubrique, sitename, style)
    else:
        _, source, where = job
        try:
            with open(source, "rb") as file:
                data, _ = drawing.cover(file.read())
        except (OSError, ValueError, SyntaxError) as error:  # Pillow's errors for a damaged file
            return f"{where}: cannot be read as a picture ({type(error).__name__}: {error})"
    temporary = os.path.join(folder, f".{entry}.{os.getpid()}")
    with open(temporary, "wb") as file:
        file.write(data)
    os.replace(temporary, os.path.join(folder, entry))
    return None


def _make(item):
    entry, job, folder = item
    return make_one(entry, job, folder)


def make_all(jobs: dict, folder: str, workers: int = 0) -> list[str]:
    """Make every card of jobs ({entry: job}); the problems, in the order of the entries."""
    items = [(entry, jobs[entry], folder) for entry in sorted(jobs)]
    workers = min(workers or len(os.sched_getaffinity(0)), len(items))
    if workers < 2 or len(items) < MIN_PARALLEL:
        results = [_make(item) for item in items]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_make, items, chunksize=max(1, len(items) // (workers * 4)))
    return [problem for problem in results if problem]
