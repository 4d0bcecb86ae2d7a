"""What an import did, for the author: imported, skipped and why, missing images, redirects, remarks."""
from collections import Counter

LISTED = 20  # items listed one by one under a heading, then "… and N more"


def _listed(lines: list, limit: int = LISTED) -> list:
    shown = [f"    - {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"    … and {len(lines) - limit} more")
    return shown


def summary(file, export, result, seconds: float) -> str:
    posts = [i for i in result.imported if i.kind == "posts"]
    pages = [i for i in result.imported if i.kind == "pages"]
    states = Counter(i.status for i in posts)
    out = [f"Imported from {file} ({export.title or 'WordPress'}, {export.link}):",
           f"  posts: {len(posts)} in {result.content / 'posts'} ({states['published']} published, "
           f"{states['draft']} drafts, {states['scheduled']} scheduled)",
           f"  pages: {len(pages)} in {result.content / 'pages'}"
           + (f" ({sum(1 for p in pages if p.status == 'draft')} drafts)" if any(
               p.status == "draft" for p in pages) else "")]
    scheduled = [i for i in posts if i.status == "scheduled"]
    if scheduled:
        out.append("  scheduled (published once their date has passed):")
        out += _listed([f"« {i.title} » on {i.date:%Y-%m-%d %H:%M}" for i in scheduled])
    if result.skipped or result.counted:
        out.append(f"  skipped: {len(result.skipped) + sum(result.counted.values())}")
        out += _listed([f"« {s.title or 'untitled'} » (line {s.line}): {s.reason}" for s in result.skipped])
        out += [f"    - {count} {reason}" for reason, count in sorted(result.counted.items())]
    if result.comments:
        out.append(f"  comments: {result.comments} not imported (the site has none)")
    media = result.media
    copied = len(result.copies)
    used = len(set(media.copies) | set(media.missing))
    out.append(f"  images and files: {used} used, {copied} copied into {result.content / media.folder}"
               + (f" ({len(media.originals)} resized copies replaced by their original)" if media.originals else ""))
    if media.missing:
        out.append(f"  missing (not in UPLOADS; put them in {result.content / media.folder} under the same path):")
        out += _listed([f"{path} (in {', '.join(where[:3])}{'…' if len(where) > 3 else ''})"
                        for path, where in sorted(media.missing.items())])
    if media.refused:
        out.append("  refused (a path that leaves the uploads folder):")
        out += _listed(sorted(media.refused))
    out.append(f"  redirects: {len(result.redirects)} old addresses in {result.content / 'redirects.csv'} "
               "(the build writes a page for each, and output/redirects.nginx.map)")
    if result.redirect_conflicts:
        out.append("  old addresses claimed twice (the first kept):")
        out += _listed([f"{old} -> {target} (kept: {kept})" for old, target, kept in result.redirect_conflicts])
    if result.notes:
        out.append("  remarks:")
        out += _listed([f"{where}: {note}" for where, note in result.notes], limit=50)
    out.append(f"  done in {seconds:.2f} s")
    return "\n".join(out)
