"""A model's vocabulary: built from captions, saved in the model folder, prompts checked against it."""
import json

import numpy as np
import pytest

from phenaki_core.data import shapes_world as sw
from phenaki_core.pipelines import DEFAULT_MODEL
from phenaki_core.text.vocabulary import (
    VOCABULARY_FILE,
    VocabularyError,
    build_vocabulary,
    closest_words,
    load_vocabulary,
    save_vocabulary,
    shapes_world_vocabulary,
    suggestions,
    training_vocabulary,
    unknown_words,
    words_of,
)


@pytest.fixture(scope="module")
def default_vocab():
    return shapes_world_vocabulary()


def test_words_of_normalises_case_punctuation_and_apostrophes():
    assert words_of("A Red  circle, moves-right.") == ["a", "red", "circle", "moves", "right"]
    assert words_of("it doesn’t move") == ["it", "doesn't", "move"]
    assert words_of("   ") == []


def test_every_training_caption_is_known(default_vocab):
    # Captions drawn as training draws them (paraphrased, with stories and images) use no unknown word.
    rng = np.random.default_rng(123)
    for _ in range(300):
        _, text = sw.sample_video(rng, size=64, story_fraction=0.3)
        assert unknown_words(text, default_vocab) == [], text
        _, text = sw.sample_image(rng)
        assert unknown_words(text, default_vocab) == [], text


def test_unknown_words_are_flagged_once_in_prompt_order(default_vocab):
    assert unknown_words("a dog runs after the dog", default_vocab) == ["dog", "runs", "after"]
    assert unknown_words("A RED ball slides left on a navy background.", default_vocab) == []
    assert unknown_words("a pink circle", default_vocab) == ["pink"]


def test_closest_words_suggest_a_spelling(default_vocab):
    assert closest_words("blu", default_vocab)[0] == "blue"
    assert closest_words("triangel", default_vocab)[0] == "triangle"
    assert closest_words("xylophone", default_vocab) == []


def test_default_suggestions_are_grouped_and_known(default_vocab):
    groups = suggestions(default_vocab)
    assert list(groups) == ["colours", "shapes", "motions", "backgrounds", "styles"]
    assert groups["colours"] == list(sw.COLOURS)
    assert set(sw.SHAPES) <= set(groups["shapes"]) and "ball" in groups["shapes"]  # paraphrases offered too
    assert set(sw.MOTIONS) <= set(groups["motions"]) and "goes to the left" in groups["motions"]
    assert groups["backgrounds"] == [f"on a {b} background" for b in sw.BACKGROUNDS]
    for phrases in groups.values():
        for phrase in phrases:
            assert unknown_words(phrase, default_vocab) == [], phrase
            # and each suggestion is something the caption parser reads back
    sw.parse_caption(f"a {groups['colours'][0]} {groups['styles'][0]} {groups['shapes'][3]} "
                     f"{groups['motions'][-1]} {groups['backgrounds'][1]}")


def test_shipped_vocabulary_matches_the_caption_generator(default_vocab):
    shipped = load_vocabulary(DEFAULT_MODEL)
    assert shipped is not None, f"{DEFAULT_MODEL} carries no {VOCABULARY_FILE}"
    assert shipped.to_dict() == default_vocab.to_dict()


def test_user_model_gets_its_own_plain_vocabulary(tmp_path):
    captions = ["A chef slices an onion.", "a chef stirs the soup", "rain falls on a window"]
    vocab = build_vocabulary(captions)
    assert suggestions(vocab) == {"words": sorted(set(words_of(" ".join(captions))))}
    save_vocabulary(vocab, tmp_path)
    loaded = load_vocabulary(tmp_path)
    assert loaded == vocab
    assert unknown_words("a chef slices a red circle", loaded) == ["red", "circle"]


def test_training_vocabulary_reads_caption_folders(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"")  # load_captions checks the files exist, not their content
    (tmp_path / "captions.csv").write_text("file,caption\nclip.mp4,a kite flies over the hill\n")
    vocab = training_vocabulary(videos=tmp_path)
    assert vocab.words == ["a", "flies", "hill", "kite", "over", "the"]
    assert not vocab.groups


def test_groups_must_use_caption_words():
    with pytest.raises(VocabularyError, match="dragon"):
        build_vocabulary(["a red circle"], {"shapes": ["dragon"]})


def test_a_model_without_a_vocabulary_checks_nothing(tmp_path):
    assert load_vocabulary(tmp_path) is None


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe not utf8", "not valid JSON"),
    (b"[1, 2]", "not a vocabulary"),
    (json.dumps({"format": "phenaki-vocabulary/1", "words": {}}).encode(), "non-empty"),
    (json.dumps({"format": "phenaki-vocabulary/1", "words": {"Two Words": 1}}).encode(), "bad entry"),
    (json.dumps({"format": "phenaki-vocabulary/1", "words": {"red": -1}}).encode(), "bad entry"),
    (json.dumps({"format": "phenaki-vocabulary/1", "words": {"red": 1}, "groups": {"c": "red"}}).encode(), "groups"),
    (b"[" * 100000, "not valid JSON"),
])
def test_bad_vocabulary_files_say_why(tmp_path, content, message):
    (tmp_path / VOCABULARY_FILE).write_bytes(content)
    with pytest.raises(VocabularyError, match=message):
        load_vocabulary(tmp_path)


def test_oversized_vocabulary_file_is_refused_before_reading(tmp_path):
    with open(tmp_path / VOCABULARY_FILE, "wb") as f:
        f.truncate(5 * 1024 * 1024)
    with pytest.raises(VocabularyError, match="larger than"):
        load_vocabulary(tmp_path)
