"""Every relative link of the Markdown documentation points to a file that exists (and to a heading
that exists, where it names one).

Covers README.md, docs/ and every other Markdown file of the checkout (roles' READMEs,
benchmark/README.md, ...). External links (http:, https:, mailto:) are not followed. In a built
collection the links into what galaxy.yml's build_ignore leaves out dangle by design, so there the
check is skipped.
"""

from __future__ import annotations

import os
import re

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP_DIRS = {".git", ".venv", "build", ".cache", ".ansible", ".pytest_cache", ".hypothesis",
             "__pycache__", "output", "node_modules"}

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`[^`]*`")
# [text](target) and ![alt](target); the target ends at whitespace (a title may follow) or ")".
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def in_built_collection():
    """A built or installed collection (MANIFEST.json at its root) leaves out, by galaxy.yml's
    build_ignore, pages its README links to as living in the source repository."""
    return os.path.exists(os.path.join(REPO_ROOT, "MANIFEST.json"))


def markdown_files():
    found = []
    for directory, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        found.extend(os.path.relpath(os.path.join(directory, f), REPO_ROOT)
                     for f in sorted(files) if f.endswith(".md"))
    return found


def prose_lines(text):
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, CODE_SPAN.sub("``", line)


def slug(heading):
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    seen = {}
    result = set()
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else "%s-%d" % (base, count))
    return result


def test_the_documentation_is_found():
    files = markdown_files()
    assert "README.md" in files
    assert os.path.join("docs", "cluster-plan.md") in files


@pytest.mark.parametrize("source", markdown_files())
def test_relative_links_resolve(source):
    if in_built_collection():
        pytest.skip("a built collection leaves linked pages out (galaxy.yml build_ignore): checked in the source")
    source_path = os.path.join(REPO_ROOT, source)
    with open(source_path, encoding="utf-8") as handle:
        text = handle.read()
    broken = []
    for number, line in prose_lines(text):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # http:, https:, mailto:
            path, anchor = target.partition("#")[::2]
            resolved = source_path if not path else os.path.normpath(
                os.path.join(os.path.dirname(source_path), path))
            if not resolved.startswith(REPO_ROOT + os.sep):
                broken.append("%s:%d: %s leaves the repository" % (source, number, target))
            elif not os.path.exists(resolved):
                broken.append("%s:%d: %s: no such file" % (source, number, target))
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                broken.append("%s:%d: %s: no such heading in %s"
                              % (source, number, target, os.path.relpath(resolved, REPO_ROOT)))
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("heading, anchor", [
    ("The firewall sandwich (`sandwich`)", "the-firewall-sandwich-sandwich"),
    ("Rules the model enforces (primary_backup, and every architecture)",
     "rules-the-model-enforces-primary_backup-and-every-architecture"),
    ("What conntrack still does on a multipath node, and the sysctls",
     "what-conntrack-still-does-on-a-multipath-node-and-the-sysctls"),
    ("Status, rollback & switchover", "status-rollback--switchover"),
])
def test_slug_is_githubs(heading, anchor):
    assert slug(heading) == anchor
