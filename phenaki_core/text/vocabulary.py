"""A model's vocabulary: the words of the captions it was trained on.

A model folder carries `vocabulary.json` beside `model_index.json`, written at training
time from the training captions, so a studio can tell a user which words of a prompt the
model has never seen ("a dog runs": `dog`, `runs`) and offer the ones it knows. Nothing
here is specific to Shapes World except `shapes_world_vocabulary`, which drives the real
caption generator over its whole grammar and groups the phrases for suggestions; a model
trained on a user's captions gets `build_vocabulary(captions)` (a plain word list) with no
code change.

File format (`phenaki-vocabulary/1`):
    {"format": ..., "source": "...", "captions": N,
     "words": {"word": count, ...},            # every word of the captions, with its count
     "groups": {"colours": ["red", ...], ...}} # optional: phrases to suggest, by kind
"""
from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

VOCABULARY_FILE = "vocabulary.json"
VOCABULARY_FORMAT = "phenaki-vocabulary/1"
MAX_VOCABULARY_BYTES = 4 * 1024 * 1024  # a big caption set has ~1e5 distinct words; this is ample
MAX_WORD_CHARS = 64
_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


class VocabularyError(ValueError):
    """A vocabulary file that cannot be used; the message says why."""


def words_of(text: str) -> list[str]:
    """The words of a caption or prompt as the vocabulary counts them: lower case, NFC,
    letters and digits (an inner apostrophe kept: "doesn't"); punctuation dropped."""
    text = unicodedata.normalize("NFC", text).lower().replace("’", "'")
    return _WORD_RE.findall(text)


@dataclass(frozen=True)
class Vocabulary:
    """The words a model was trained on (with how often each occurred) and, optionally,
    phrases grouped by kind for suggestions (for the default model: colours, shapes, ...)."""

    counts: dict[str, int]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "captions"
    captions: int = 0

    def __contains__(self, word: str) -> bool:
        return word in self.counts

    @property
    def words(self) -> list[str]:
        return sorted(self.counts)

    def to_dict(self) -> dict:
        return {"format": VOCABULARY_FORMAT, "source": self.source, "captions": self.captions,
                "words": dict(sorted(self.counts.items())),
                "groups": {k: list(v) for k, v in self.groups.items()}}


def build_vocabulary(captions: Iterable[str], groups: dict[str, Iterable[str]] | None = None,
                     source: str = "captions") -> Vocabulary:
    """The vocabulary of a set of training captions. `groups` (optional): phrases to suggest,
    by kind; each must consist of words of the captions."""
    counts: Counter[str] = Counter()
    n = 0
    for text in captions:
        counts.update(words_of(text))
        n += 1
    groups = {str(k): tuple(dict.fromkeys(v)) for k, v in (groups or {}).items()}
    for kind, phrases in groups.items():
        for phrase in phrases:
            missing = [w for w in words_of(phrase) if w not in counts]
            if missing:
                raise VocabularyError(f"the {kind} phrase {phrase!r} has words no caption uses: {missing}")
    return Vocabulary(dict(counts), groups, source, n)


def shapes_world_captions(seed: int = 0, paraphrase_draws: int = 12) -> list[str]:
    """Captions from Shapes World's own generator over its whole grammar: every colour,
    shape, style, motion (or none, as images have) and background, canonical and
    paraphrased (`paraphrase_draws` draws each, with and without the background)."""
    import numpy as np

    from phenaki_core.data import shapes_world as sw

    rng = np.random.default_rng(seed)
    out = []
    for colour in sw.COLOURS:
        for shape in sw.SHAPES:
            for style in sw.STYLES:
                for motion in (*sw.MOTIONS, None):
                    for background in sw.BACKGROUNDS:
                        scene = sw.Scene(colour, shape, motion, background, style, x=0, y=0, half=0)
                        for with_bg in (True, False):
                            out.append(sw.caption(scene, True, with_background=with_bg))
                            out += [sw.caption(scene, False, rng, with_bg) for _ in range(paraphrase_draws)]
    return out


def _shapes_world_groups(captions: list[str]) -> dict[str, list[str]]:
    """Phrases by kind, read back from the generator's captions so that every paraphrase
    the generator uses is offered (its word lists are its own business)."""
    from phenaki_core.data import shapes_world as sw

    shapes, motions = {}, {}
    for text in captions:
        if " background" in text:
            continue
        parts = text.split(" ", 2)  # "a", colour, "[outlined ]shape[ motion]"
        rest = parts[2].removeprefix("outlined ")
        shape_word, _, motion = rest.partition(" ")
        shapes.setdefault(shape_word, None)
        if motion:
            motions.setdefault(motion, None)
    canonical_first = list(sw.MOTIONS) + sorted(m for m in motions if m not in sw.MOTIONS)
    return {"colours": list(sw.COLOURS),
            "shapes": list(sw.SHAPES) + sorted(s for s in shapes if s not in sw.SHAPES),
            "motions": canonical_first,
            "backgrounds": [f"on a {b} background" for b in sw.BACKGROUNDS],
            "styles": [s for s in sw.STYLES if s != "solid"]}  # solid is the unmarked default: no word


def shapes_world_vocabulary() -> Vocabulary:
    """The default model's vocabulary, from Shapes World's caption generator."""
    captions = shapes_world_captions()
    return build_vocabulary(captions, _shapes_world_groups(captions), source="shapes-world")


def training_vocabulary(videos: str | Path | None = None, images: str | Path | None = None) -> Vocabulary:
    """The vocabulary of what a training run reads: the captions of the video and image
    folders, or Shapes World when no folder is given (as the trainers choose their data)."""
    if videos is None and images is None:
        return shapes_world_vocabulary()
    from phenaki_core.data.folders import load_captions

    captions = [c for folder in (videos, images) if folder is not None for _, c in load_captions(folder)]
    return build_vocabulary(captions, source="caption folders")


def save_vocabulary(vocab: Vocabulary, folder: str | Path) -> Path:
    path = Path(folder) / VOCABULARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vocab.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_vocabulary(folder: str | Path) -> Vocabulary | None:
    """The vocabulary a model folder carries; None when it has none (a model trained before
    vocabularies were written: the studio then checks nothing). VocabularyError when the
    file is there but unusable."""
    path = Path(folder) / VOCABULARY_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_VOCABULARY_BYTES:
        raise VocabularyError(f"{path} is larger than {MAX_VOCABULARY_BYTES // 2**20} MB; not a vocabulary")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise VocabularyError(f"{path} is not valid JSON text: {e}") from None
    return vocabulary_from_dict(data, str(path))


def vocabulary_from_dict(data, where: str = "the vocabulary") -> Vocabulary:
    if not isinstance(data, dict) or data.get("format") != VOCABULARY_FORMAT:
        raise VocabularyError(f"{where} is not a vocabulary (expected \"format\": \"{VOCABULARY_FORMAT}\")")
    words = data.get("words")
    if not isinstance(words, dict) or not words:
        raise VocabularyError(f"{where}: \"words\" must be a non-empty object of word: count")
    for w, c in words.items():
        if len(w) > MAX_WORD_CHARS or words_of(w) != [w] or isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise VocabularyError(f"{where}: bad entry {w[:MAX_WORD_CHARS]!r}: {c!r} (a lower-case word and a count)")
    groups = data.get("groups") or {}
    if not isinstance(groups, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(p, str) for p in v) for k, v in groups.items()):
        raise VocabularyError(f"{where}: \"groups\" must map a kind to a list of phrases")
    captions = data.get("captions", 0)
    source = data.get("source", "captions")
    return Vocabulary(dict(words), {k: tuple(v) for k, v in groups.items()},
                      source if isinstance(source, str) else "captions",
                      captions if isinstance(captions, int) and not isinstance(captions, bool) else 0)


def unknown_words(prompt: str, vocab: Vocabulary) -> list[str]:
    """The words of `prompt` that no training caption used, once each, in prompt order."""
    return list(dict.fromkeys(w for w in words_of(prompt) if w not in vocab))


def closest_words(word: str, vocab: Vocabulary, n: int = 3) -> list[str]:
    """Known words spelled like `word` ("blu" -> "blue"), for a "did you mean"."""
    return difflib.get_close_matches(word.lower(), vocab.words, n=n, cutoff=0.75)


def suggestions(vocab: Vocabulary) -> dict[str, list[str]]:
    """What to offer a user: the grouped phrases when the vocabulary has groups (the
    default model: colours, shapes, motions, backgrounds, styles), else {"words": every
    known word, sorted}, for a model trained on other captions."""
    if vocab.groups:
        return {k: list(v) for k, v in vocab.groups.items()}
    return {"words": vocab.words}
