"""What the README promises a new user: prompts that the default model's world knows, and
links that lead somewhere."""
import re
from pathlib import Path

from phenaki_core.data.shapes_world import parse_caption

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_example_stories_are_shapes_world_prompts():
    stories = re.findall(r"(?m)^\d\. (`.*)$", README)
    assert len(stories) >= 3
    for story in stories:
        prompts = re.findall(r"`([^`]+)`", story)
        assert len(prompts) >= 2, story
        for prompt in prompts:
            parse_caption(prompt)  # raises ValueError naming the vocabulary


def test_relative_links_in_the_user_documents_exist():
    docs = [ROOT / "README.md", ROOT / "assets/phenaki-shapes-64/README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for doc in docs:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://", "mailto:")) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links: " + ", ".join(broken)
