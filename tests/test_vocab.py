"""The shared tokenizer and word vocabulary (RES baseline, retrieval, RefCOCO export)."""

from clevr_remv.dataset.vocab import PAD, UNKNOWN, Vocabulary, tokenize


def test_tokenize():
    assert tokenize("The big, RED ball's there.") == ["the", "big", "red", "ball's", "there"]
    assert tokenize("...") == []


def test_vocabulary_build_and_encode():
    vocab = Vocabulary.build(["a red ball", "a blue ball", "a cube"], min_count=2)
    assert vocab.words == ["<pad>", "<unk>", "a", "ball"] and len(vocab) == 4
    assert vocab.encode("A green ball") == [2, 1, 3]
    assert vocab.encode("...") == []


def test_stored_vocabularies_load_back():
    vocab = Vocabulary.build(["the red cube", "the blue cube"])
    assert vocab.words[:2] == [PAD, UNKNOWN]
    for stored in (vocab.words, vocab.words[2:]):  # with and without the special tokens
        loaded = Vocabulary(stored)
        assert loaded.words == vocab.words and loaded.index == vocab.index
