"""The HTML page: one static file, no scripts and no network (images are files beside it)."""
import html

STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
img.figure { max-width: 100%; display: block; margin: 0.5em 0; }
.gallery { margin-bottom: 1em; }
.row { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 3px; margin: 2px 0; }
.cls { width: 5em; font-size: 0.8em; }
figure { margin: 0; width: 64px; font-size: 0.62em; text-align: center; border: 2px solid #fff; }
figure.corrupted { border-color: #d00; }
figure img { width: 56px; height: 56px; image-rendering: pixelated; }
"""


def table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write(path, title, body):
    with open(path, "w") as f:
        f.write('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                '<link rel="icon" href="data:,">'
                f'<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n'
                f'<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n')
