"""How the classifier reads a prompt: instruction versus pasted material, words (accents, scripts,
character pairs), instruction cues, the task lexicon, code lines and token order."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import unicodedata

import classify_helpers
import numpy as np

from tui.router.classifier import features as F
from tui.router.classifier import split as S
from tui.router.classifier import words as W
from tui.router.classifier.training import examples_by_label, train, vocabularies

# The shared fixtures, bound by name so pytest finds them here (imported, ruff would read
# every test argument of the same name as a redefinition, F811).
_cache_dir = classify_helpers._cache_dir
default_table = classify_helpers.default_table


# --------------------------------------------------------------------------------------------
# Instruction versus pasted material
# --------------------------------------------------------------------------------------------


def test_split_separates_instruction_from_pasted_material():
    s = S.split_prompt(F.clean(
        "Here is an email from my landlord:\n\n"
        "Dear tenant, the rent will increase by 5% from next month as discussed before.\n\n"
        "Write a polite reply asking for the increase to be delayed?"
    ))
    assert any("landlord" in i for i in s.instruction)
    assert any("polite reply" in i for i in s.instruction)
    assert [p.how for p in s.passages] == ["colon"]
    assert "rent will increase" in s.passages[0].text

    s = S.split_prompt(F.clean("why does this fail?\n```python\ndef f(:\n    pass\n```"))
    assert s.instruction == ["why does this fail?"]
    assert (s.passages[0].how, s.passages[0].kind, s.passages[0].label) == (
        "fence", "code", "python"
    )

    s = S.split_prompt(F.clean("Text: Alice met Bob in Paris in 1999 and they founded Acme.\n\n"
                               "Question: who founded Acme?"))
    assert s.instruction == ["who founded Acme?"]
    assert s.passages[0].label == "text"


def test_a_paragraph_then_a_short_question_about_it_is_reading_comprehension():
    text = ("Lake Baikal in Siberia is the deepest lake on Earth, reaching 1,642 metres, and holds"
            " about a fifth of the world's unfrozen fresh water. It is home to the nerpa seal.")
    s = S.split_prompt(F.clean(text + "\n\nHow deep is the lake?"))
    assert s.instruction == ["How deep is the lake?"]
    assert [(p.how, p.text) for p in s.passages] == [("para", text)]
    # Two paragraphs that both ask stay instruction.
    s = S.split_prompt(F.clean("I'm hosting ten people on Saturday and my oven is broken, so what"
                               " can I cook on two hobs? Nothing too fancy please.\n\nAny ideas?"))
    assert not s.passages


def test_a_short_ask_then_paragraphs_that_ask_nothing_makes_them_material():
    """Chat prompts ask first and paste after, often with no colon: the article is material
    (before, its words and numbers were instruction, and the figures made it math)."""
    article = ("In this randomized trial, 1,204 adults aged 50-75 were assigned to a low-salt diet"
               " or usual care for 18 months. Systolic pressure fell by 6.1 mmHg in the diet group"
               " and 1.2 mmHg with usual care; adherence was 71%.")
    for ask in ("tl;dr", "what's the sample size and the main result? no time to read it all"):
        s = S.split_prompt(F.clean(ask + "\n\n" + article))
        assert s.instruction == [ask]
        assert [(p.how, p.text) for p in s.passages] == [("para", article)]
    # A paragraph that asks something stays instruction ("can you ..." after a short ask).
    s = S.split_prompt(F.clean("Write a cover letter.\n\nCan you mention that I led a team of"
                               " five nurses for three years and that I speak Spanish? Keep it"
                               " under 300 words please."))
    assert not s.passages
    # A role-play set-up is the ask, not material before a short question.
    setup = ("Let's roleplay. You are Bram, a grumpy innkeeper in a small fantasy village. I'm a"
             " traveler who walked in soaked from the storm with two silver coins. Stay in"
             " character no matter what.")
    s = S.split_prompt(F.clean(setup + "\n\n*shakes off the rain* Evening. Got a room?"))
    assert s.instruction[0] == setup and not s.passages


def test_a_plain_line_above_pasted_code_is_the_ask():
    """A line of plain words over a code block, without a blank line between ('its not
    working', 'why', 'what does this do' with no question mark) is the ask, not code."""
    code = "func main() {\n    ch := make(chan int)\n    go func() { ch <- 1 }()\n}"
    for ask in ("why", "its not working", "what does this do", "help?"):
        s = S.split_prompt(F.clean(ask + "\n" + code))
        assert s.instruction == [ask]
        assert [(p.how, p.kind) for p in s.passages] == [("structured", "code")]


def test_go_code_is_code_and_a_one_line_summarize_pastes_its_text():
    # Go indents with tabs: that is code, not a tab-separated table.
    go = "func (s *Server) get(w http.ResponseWriter, r *http.Request) {\n\tid := r.URL.Query()"
    go += ".Get(\"id\")\n\tif id == \"\" {\n\t\treturn\n\t}\n}"
    s = S.split_prompt(F.clean("Can you review this Go handler?\n\n" + go))
    assert [p.kind for p in s.passages] == ["code"]
    s = S.split_prompt(F.clean("Which city is oldest?\n\nname\tfounded\nRome\t753 BC\nParis\t250 BC"))
    assert [p.kind for p in s.passages] == ["table"]
    # "summarize: <text>" on one line: the text is material.
    s = S.split_prompt(F.clean("summarize: The new firmware adds a vacation mode, fixes the bug"
                               " where the display froze after a power cut, and improves Wi-Fi."))
    assert s.instruction == ["summarize:"]
    assert [p.how for p in s.passages] == ["inline"]


def test_a_question_line_ends_labelled_material_in_the_same_paragraph():
    s = S.split_prompt(F.clean("Reference: The vault opened in 2008 and keeps seeds at minus 18"
                               " degrees.\nQuestion: How cold is it kept?"))
    assert s.instruction == ["How cold is it kept?"]
    assert [(p.how, p.label) for p in s.passages] == [("label", "reference")]
    assert s.passages[0].text == "The vault opened in 2008 and keeps seeds at minus 18 degrees."


def test_a_letter_after_a_question_about_it_is_material_though_it_asks_things():
    """A short last paragraph that asks something closes pasted material as the ask; a letter
    (a greeting with a name, or a sign-off with one) asks things too, and stays material."""
    for letter in (
        "Dear customer service, my order #55812 arrived broken. I would like a replacement. Best,"
        " Paolo",
        "Hi team, can you all send me your slides by Friday? I need them for the review.",
        "Can you send me the invoice again? I need it for my taxes.\nThanks,\nPriya",
    ):
        s = S.split_prompt(F.clean("Who wrote this email and what do they want?\n\n" + letter))
        assert s.instruction == ["Who wrote this email and what do they want?"]
        assert [p.text for p in s.passages] == [letter]
    # A closing ask stays the ask, thanks and all.
    s = S.split_prompt(F.clean("Here is the email:\n\nThe meeting moves to 3pm on Monday in room"
                               " 4B, and lunch is provided.\n\nCan you summarise it? Thanks so much"))
    assert s.instruction[-1] == "Can you summarise it? Thanks so much"


def test_inference_maps_a_prompt_to_the_columns_of_its_tokens(default_table):
    """LinearModel.counts goes from words to columns through caches, never building the token
    strings; it must count exactly the columns of the analyzer's tokens, on every prompt shape
    (short asks, pasted passages, fences, huge and non-Latin text), and again from the caches."""
    trained = train(examples_by_label(default_table), calibrate=False,
                      vocabulary=vocabularies(default_table))
    model = trained.model
    pool = [e for v in examples_by_label(default_table).values() for e in v]
    prompts = pool[::7] + [
        "summarize this:\n\n" + "\n\n".join(pool[:40]),
        "```python\n" + "\n".join(pool[40:80]) + "\n```\nwhy does this fail?",
        "Écris un poème sur la mer, s'il te plaît — 海についての詩",
        "x" * 50_000 + " what is this",
        "1234 + 5678 = ? and the integral of x^2",
    ]
    for _ in range(2):  # the second time, every word comes from the caches
        for prompt in prompts:
            ids = np.array([model.vocab.get(t, -1) for t in F.tokens(prompt, model.lexicon)],
                           dtype=np.intp)
            want_cols, want_counts = np.unique(ids[ids >= 0], return_counts=True)
            cols, counts = model.counts(prompt)
            assert np.array_equal(cols, want_cols), prompt[:60]
            assert np.array_equal(counts, want_counts), prompt[:60]


def test_passage_tokens_are_prefixed_apart_from_instruction_tokens():
    tokens = F.tokens('Translate "the weather is lovely in spring here" into French')
    assert "w:translate" in tokens and "w:french" in tokens
    assert "p:weather" in tokens and "w:weather" not in tokens
    assert "s:passage" in tokens
    assert {F.group_of(t) for t in ("w:x", "b:x_y", "f:x")} == {F.GROUP_WORDS}
    assert F.group_of("c: wor") == F.GROUP_CHARS
    assert F.group_of("p:x") == F.GROUP_PASSAGE
    assert F.group_of("s:passage") == F.GROUP_SHAPE


# --------------------------------------------------------------------------------------------
# Words, cues, the lexicon, code lines and tokens
# --------------------------------------------------------------------------------------------


def test_accents_fold_to_their_base_letters_and_other_scripts_are_kept():
    assert W.split_words("Poème función naïve Ünïcödé") == ["poeme", "funcion", "naive", "unicode"]
    assert W.split_words("Привет, мир") == ["привет", "мир"]
    # The translation table fills itself as text arrives: a second pass gives the same answer.
    assert W.split_words("crème brûlée") == W.split_words("crème brûlée") == ["creme", "brulee"]
    assert W.split_words("ﬁle ½ mp3 it’s O'Neil's x'y'z _a_b") == [
        "file", "1", "2", "mp0", "it's", "o'neil", "s", "x'y", "z", "a", "b"]


def _reference_words(text: str) -> list[str]:
    """The definition split_words keeps to: lower case, 1-9 as 0, ’ as ', NFKD without combining
    marks, then the word regex."""
    text = re.sub("[1-9]", "0", text.lower()).replace("’", "'")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return W.WORD_RE.findall(text)


def test_words_are_what_the_word_regex_finds_in_the_folded_text(default_table):
    rng = random.Random(5)
    texts = [t for ex in examples_by_label(default_table).values() for t in ex]
    texts += ["".join(chr(rng.randrange(0x30000)) for _ in range(200)) for _ in range(200)]
    texts += ["".join(rng.choice("ab'’ _-19é\u0301ﬁ½İΣσς.Я٣") for _ in range(40))
              for _ in range(3000)]
    for text in texts:
        assert W._plain_words(text) == _reference_words(text), repr(text)


def test_chinese_and_japanese_runs_become_character_pairs():
    assert W.split_words("写一首关于春天的诗") == ["写一", "一首", "首关", "关于", "于春", "春天", "天的", "的诗"]
    assert W.split_words("用Python写函数, ok") == ["用", "python", "写函", "函数", "ok"]
    assert W.split_words("Javaの配列") == ["java", "の配", "配列"]
    assert W.split_words("猫") == ["猫"]
    assert W.split_words("ｶﾀｶﾅ text") == ["カタ", "タカ", "カナ", "text"]  # half-width folds first
    # Korean has spaces: its words stay whole (as jamo, like every word, NFKD-decomposed).
    assert W.split_words("한국어 문장") == W._plain_words("한국어 문장") and len(W.split_words("한국어 문장")) == 2


def test_instruction_cues_count_whole_words_and_questions():
    # "can", "you", "please", "summarize" and the question mark: 5 cues over 5 words.
    assert S._instructiveness("can you please summarize this?") == 1.0
    assert S._instructiveness("you're right") == 0.5  # "you're" counts by its head
    assert S._instructiveness("2024-05-14 02:00:01 INFO etl.main starting run") == 0.0
    assert S._instructiveness("cannot yourself") == 0.0  # parts of words are not cues


def test_lexicon_normalises_entries_like_prompt_words_and_matches_phrases():
    lex = F.Lexicon.build({"creative": ["Poème", "fairy tale"], "code": ["node.js", "git"]})
    words = W.split_words("Écris un poème, a fairy tale about node.js and Git")
    assert sorted(lex.hits(words)) == ["x:code", "x:code", "x:creative", "x:creative"]
    assert not F.Lexicon.build({})
    # Chinese and Japanese entries are runs of character pairs, whatever their length.
    cjk = F.Lexicon.build({"code": ["プログラム", "数据库"], "math": ["方程"]})
    assert sorted(cjk.hits(W.split_words("このプログラムの数据库と方程"))) == ["x:code", "x:code", "x:math"]
    assert cjk.hits(W.split_words("プログ")) == []
    assert F.tokens("a fairy tale", F.Lexicon()) == F.tokens("a fairy tale")


# What a code line is, as one regex tried at every position (the definition _code_line keeps to).
_CODE_LINE_REFERENCE = re.compile(
    r"^\s*(def|class|import|from|return|elif|else|try|except|catch|function|const|let|var|"
    r"public|private|static|void|int|#include|using|package|func|fn|struct|SELECT|INSERT|UPDATE|"
    r"CREATE|DELETE|ALTER|DROP|WITH|\$|>>>|sudo|npm|pip|git|cd|docker|kubectl)\b|"
    r"^\s*(if|for|while)\b.*[:{)]\s*$|[;{}]\s*$|^\s{2,}\S|=>|->|::|==|!=|\+=|&&|\|\||"
    r"\w\([^()\n]{0,80}\)"
)


def test_a_code_line_is_what_the_reference_regex_finds(default_table):
    rng = random.Random(3)
    texts = [t for ex in examples_by_label(default_table).values() for t in ex]
    lines = [ln for t in texts for ln in t.split("\n")]
    lines += ["".join(rng.choice("ab (){};:=-><|&!+ \t\u00a0") for _ in range(rng.randrange(30)))
              for _ in range(5000)]
    lines += ["  x", "if x:", "for i in y {  ", "print(x) ", "a -> b", "done;  ", "", "   "]
    assert sum(map(S._code_line, lines)) > 1000  # the examples hold plenty of code
    for line in lines:
        assert S._code_line(line) == bool(_CODE_LINE_REFERENCE.search(line)), repr(line)


def test_tokens_come_in_the_same_order_in_every_process():
    """Token order sets the model's column order; were it to follow string hashing (a set), two
    trainings on the same table would differ and a borderline prompt could flip."""
    prompts = [
        "Fix this: if (a >= b && c != d) { x = y % 2; } -> why [] and $x?",
        "Summarise:\n\n```\nSELECT 1;\n```\n\nand this log:\n\n2024-01-01 ERROR x\n2024-01-01 WARN y"
        "\n\n| a | b |\n| 1 | 2 |",
    ]
    script = ("import json, sys; from tui.router.classifier import features as F; "
              "print(json.dumps([F.tokens(p) for p in json.loads(sys.argv[1])]))")
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script, json.dumps(prompts)], env=env,
                              capture_output=True, text=True, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert sum(t.startswith("y:") for t in json.loads(outputs.pop())[0]) >= 5


def test_the_material_noun_prefilter_never_hides_a_match(default_table):
    texts = [t for ex in examples_by_label(default_table).values() for t in ex]
    pieces = [t[i : i + 300] for t in texts for i in range(0, len(t), 150)]
    pieces += ["Summarize THE ARTICLE below", "fix my e-mail", "the big Listing:", "our CV",
               "the ſtory", "this ＴＥＸＴ"]
    assert sum(map(S._names_material, pieces)) > 100
    for piece in pieces:
        assert S._names_material(piece) == bool(S._NAMES_MATERIAL.search(piece)), piece
