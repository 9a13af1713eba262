"""The answer's end: did it stop mid-way? (the text rules of `truncation.find_cut`).

`answer_cut(answer, prompt)` returns the evidence name (see truncation.py's table) or None.
Each rule needs a writer who finishes what it opens: a fence, a math block, `\\boxed{`, a
bold span, a bracket or quote, a label ("**Answer:**") followed by nothing, a sentence. The
prompt, when given, adds two witnesses: an answer line naming an option whose text stops
inside the prompt's wording of it, and a multiple-choice or `\\boxed{}` prompt whose answer
states no final result; and one excuse: a last line that is the prompt's own phrase.

Measured on the corpus's real answers (tests/test_truncation.py) and on the seeded cuts of
tests/fixtures/adversarial_replies.py (benchmarks/responses.py, held-out seed).
"""

from __future__ import annotations

import functools
import re
import unicodedata

from builder.responses.phrase_filter import may_hold
from builder.responses.verify.mcq import extract_choice

_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)
_BEGIN = re.compile(r"\\begin\{([A-Za-z*]+)\}")
# Characters after which nothing can end: separators, opening brackets and quotes.
_DANGLING_CHARS = frozenset(",;([{&“‘«，、；（【《「『：^")
# Binary operators dangle only after a space ("2m =", "x +"); "Cu²+" and "PO₄³-" are charges.
_OPERATORS = frozenset("=+-*/×÷<≤≥→≈⇒∴∵±")
# Words that do not end a sentence (English function words; Chinese and Bangla connectives).
# Words that can end one ("it is", "as is", "log in", "like that", Chinese sentence-final 的 / 是)
# are left out; a single capital "A" is an option letter, not an article.
_DANGLING_WORDS_TEXT = """a an the and or nor of to than whose whereas because although via per versus vs e.g. i.e.
    between among into onto its their our your my with for from such very"""
_DANGLING_WORDS = frozenset(_DANGLING_WORDS_TEXT.split())
_DANGLING_CJK = ("和", "与", "及", "或", "对", "把", "被", "从", "向", "因为", "所以", "但是", "而且", "如果",
                 "并且", "以及", "其中", "例如", "由于", "通过")  # fmt: skip
_DANGLING_BN = frozenset({"এবং", "ও", "বা", "যে", "কিন্তু", "তবে", "যদি", "কারণ", "অথবা", "থেকে"})
_TERMINAL = frozenset(".!?。！？…।॥؟۔։።»›)]}\"'”’」』》）】*`$|>:%°")
_SENTENCE_END = re.compile(r"[.!?。！？।؟۔](?:[\s\"'”’」』）)*]|$)")
_WORD = re.compile(r"[\w'’\-.]+$")
_WORD_TAIL = 32  # characters: longer than any of _DANGLING_WORDS
_BOLD = re.compile(r"(?<!\*)\*\*(?!\*)")  # "**", not part of "***" or a "******" separator
_BARE_MARKER = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|\d+\.\s*\*\*)\s*$")
_BARE_NUMBER = re.compile(r":\s*\n\s*\d+\s*$")  # "Impacts:\n1": a numbered list announced, then cut
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|[A-Za-z][.)])\s")
_LABEL = re.compile(r"^\s*(?:[-*+]\s*)?\*\*[^*]+\*\*\s*:?\s*")  # "**Answer:** …" / "- **Step 1:** …"
# An answer line that restates a multiple-choice option: the option's text has no punctuation.
_ANSWER_OPTION = re.compile(r"^(?:\*\*[^*]*\*\*\s*:?\s*|[^\s:：*][^:：]{0,30}[:：]\s*)?\(?[A-Ea-e১-৪ক-ঘ][.):]\s")
_OPTION = re.compile(r"^\(?[A-Za-z0-9]\s?[.):]\s+")  # "C. …", "(b) …": an option label, not a sentence
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_BARE_OPTION_END = re.compile(r"(?:^|[\s*:：])(?<!\()[A-J]\)\**$")
_OPEN_TAG_END = re.compile(r"<(?:su[bp]|b|i|em|strong)?>?$")
# A Bangla sentence (it ends with "।") that stops on "১." / "= 0.": a decimal point, not a full stop.
# Searched only on a line ending in a digit and "." (re would scan each Bangla line from each letter).
_BANGLA_DECIMAL_END = re.compile(r"[\u0980-\u09ff][^।.!?\n]*\s[-+−]?\d+\.$")
_UNTERMINATED_WORDS = 3  # words of an unfinished sentence after a finished one on the same line
_UNTERMINATED_ITEM = 4  # words of an unfinished last item among items that end with punctuation
_UNTERMINATED_LINE = 15  # words of a line that is one unfinished sentence (after finished lines)
_OPEN_SPAN = 1500  # chars: a math block left open further back than this is a typo, not a cut


def _words(text: str) -> int:
    """Words, with a run of CJK characters counted as one word per two characters."""
    cjk = len(_CJK.findall(text))
    return len(_CJK.sub(" ", text).split()) + cjk // 2


def _open_math(text: str) -> bool:
    """The text ends inside math: the last opener of a kind has no closer after it."""
    n = len(text)
    if text.count("$$") % 2 and n - text.rfind("$$") <= _OPEN_SPAN:
        return True
    i = text.rfind("\\[")
    if i >= 0 and text.find("\\]", i) < 0 and n - i <= _OPEN_SPAN:
        return True
    i = text.rfind("\\(")
    if i >= 0 and text.find("\\)", i) < 0 and "\n" not in text[i:]:  # inline math is one line
        return True
    i = text.rfind("\\begin{")
    if i >= 0:
        m = _BEGIN.match(text, i)
        if m and text.find(f"\\end{{{m.group(1)}}}", i) < 0 and n - i <= _OPEN_SPAN:
            return True
    return False


def _open_boxed(text: str) -> bool:
    i = text.rfind("\\boxed{")
    if i < 0:
        return False
    depth = 0
    for ch in text[i + 6 :]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return False
    return True


def _without_code(text: str) -> str:
    """The answer with closed fenced blocks removed (their insides prove nothing about prose)."""
    if "```" not in text and "~~~" not in text:
        return text
    return re.sub(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", " ", text, flags=re.M | re.S)


def _open_bold(line: str) -> bool:
    """The line opens more `**` than it closes, and its last one opens (it follows a space, an
    opening bracket or nothing; a closing `**` follows text, as in "মালো**।")."""
    marks = list(_BOLD.finditer(line))
    if len(marks) % 2 == 0:
        return False
    i, j = marks[-1].start(), marks[-1].end()
    after = line[j : j + 1]
    if after and not (after.isalnum() or after in "([{“‘«（'\"$\\_`"):
        return False  # "**।": a closing mark whose opener the data lost
    return i == 0 or line[i - 1].isspace() or line[i - 1] in "([{“‘«（"


def _ends_terminated(line: str) -> bool:
    end = line[-1]
    return end in _TERMINAL or end.isdigit() or line.endswith("**")


def _unterminated(text: str, last_line: str) -> bool:
    """The last line is running prose that stops without finishing its sentence.

    Three ways to tell, each needing a writer who does finish sentences: a finished sentence
    then >= 3 words of an unfinished one on the same line; a one-sentence line of >= 15 words
    after a finished line; or >= 4 words when the lines before it (>= 3 of the last 12 prose
    lines or list items) nearly all end with punctuation (a list of sentences cut mid-item)."""
    line = last_line.strip()
    if not line or line.startswith(("#", "|", ">")):
        return False  # headings, tables and quotes end without punctuation
    if _ANSWER_OPTION.match(line) or not any(ch.islower() or ch.isalpha() and not ch.isascii() for ch in line):
        return False  # an option's text ("**Answer:** C. …", "B. …") or an all-caps title
    item = _LIST_ITEM.match(line) is not None
    body = _OPTION.sub("", _LABEL.sub("", _LIST_ITEM.sub("", line, count=1), count=1), count=1)
    before = [ln.strip() for ln in text[: len(text) - len(last_line)].splitlines()[-12:]]
    before = [ln for ln in before if ln and not ln.startswith(("#", "|", "```", "~~~", "\\", "$$"))]
    styled = len(before) >= 3 and sum(map(_ends_terminated, before)) >= 0.8 * len(before)
    if styled and _words(body) >= _UNTERMINATED_ITEM:
        return True
    if item:
        return False  # a list of phrases ends without punctuation
    ends = list(_SENTENCE_END.finditer(body))
    if ends:  # a finished sentence, then an unfinished one on the same line
        fragment = body[ends[-1].end() :].strip()
        if fragment.startswith(("-", "—", "–", "#", "~")) or all(w.startswith("#") for w in fragment.split()):
            return False  # a quote's attribution ("… - Paul Rand") or hashtags
        return _words(fragment) >= _UNTERMINATED_WORDS
    if _words(body) < _UNTERMINATED_LINE:
        return False  # titles, signatures, labels, poem lines, terse answers
    return bool(before) and _ends_terminated(before[-1])  # the text around it does end sentences


_LABEL_LINE = re.compile(r"[:：]\s*(?:\*\*|__)?\s*$")
_INLINE_SPANS = re.compile(r"`[^`\n]*`|\$[^$\n]*\$|\\\(.*?\\\)|\\\[.*?\\\]")
_CURRENCY = re.compile(r"\$(?=\d)")
_OPENERS, _CLOSERS = "([（【", ")]）】"
_MARKUP = re.compile(r"[*_`]+")
_PROMPT_OPTIONS = re.compile(r"(?:^|[\s{,(])['\"(]?([A-J])['\")]?\s*[:.)]\s*\S", re.M)
_OPTION_LETTER_END = re.compile(r"(?:^|[\s(*:])\(?[A-J]\)?\**$")
_UNTERMINATED_NUMBER = 3  # words of an unfinished sentence ending on a number, after a finished one


def _open_label(last_line: str) -> bool:
    """The last line announces what follows ("**Answer:**", "Given:", "where:") and nothing does."""
    return _LABEL_LINE.search(last_line) is not None


def _open_bracket(last_line: str) -> bool:
    """The last line opens more brackets than it closes (inline code and math set aside;
    intervals such as "[0, 1)" balance in total)."""
    if last_line.count("`") % 2 and "```" not in last_line:
        return True  # an inline code span left open ("`(1 + 8i)/5 = 1/5 + (8")
    line = _INLINE_SPANS.sub(" ", _CURRENCY.sub("", last_line))
    if (line.count('"') % 2 or line.count("“") > line.count("”")) and line.rstrip()[-1:].isalnum():
        return True  # a quotation left open mid-word ('Sentence A: "a train')
    if "\\" in line or "`" in line or "$" in line:
        return False  # math or code whose spans we cannot delimit
    return sum(map(line.count, _OPENERS)) > sum(map(line.count, _CLOSERS))


def _casefold_ws(text: str) -> str:
    return " ".join(_MARKUP.sub("", text).casefold().split())


def _quotes_prompt(last_line: str, prompt: str) -> bool:
    """The last line ends on an option letter ("The answer is A") or on a phrase the prompt
    itself holds (an option's text, "it is not possible to tell")."""
    line = last_line.strip()
    m = _OPTION_LETTER_END.search(line)
    if m and extract_choice(line)[0] == m.group(0).strip(" (*:)"):
        return True
    if not prompt:
        return False
    body = _casefold_ws(_OPTION.sub("", _LABEL.sub("", _LIST_ITEM.sub("", line, count=1), count=1), count=1))
    if len(body) < 2:
        return False
    # A whole phrase of its own there (an option, a list item, a quoted span): followed by a
    # delimiter, not by more of a sentence ("দুটি অভিন্ন লেন্স সংস্পর্শে" from the question) nor
    # by more of a word ("তরলের ত" inside "তরলের তাপমাত্রা").
    words = body.split()
    if not may_hold(prompt, words):
        return False  # a word the prompt lacks: skip compiling a pattern for this one line
    phrase = r"\s+".join(map(re.escape, words))
    return re.search(rf"(?<![\w\u0980-\u09ff]){phrase}(?=\s*(?:$|[\n'\"”’,;)}}\]。？?!.\\]))", prompt, re.I) is not None


def _opens_quote(last_line: str) -> bool:
    """The line ends on a quotation mark that opens (after a space or at the start of the line)."""
    line = last_line.rstrip()
    if line[-1] in "\"'" and line.count(line[-1]) % 2 == 0:
        return False  # a straight quote that closes a pair ("B. '(2n+1)π '")
    return len(line) == 1 or line[-2].isspace() or line[-2] in "([{:*"


_OPTION_TEXT = re.compile(r"(?:^|[\s*:：(\[])\(?\[?[A-J]\]?[.):]?\s+(\S.*)$")


_OPTION_LINE = re.compile(r"^\(?[A-J][.):]\s+\S")


def _partial_option(last_line: str, prompt: str) -> bool:
    """An answer line naming an option whose text stops inside the prompt's wording of it
    ("**Answer:** C. বি" where the prompt has "বিদ্যুৎ চুম্বকীয় আবেশ")."""
    if not prompt or not is_multiple_choice(prompt):
        return False
    line = _MARKUP.sub("", last_line.strip())
    m = _OPTION_TEXT.search(line)
    if m is None or (extract_choice(last_line)[0] is None and not _OPTION_LINE.match(line)):
        return False  # neither an answer statement nor a line opening on its option ("D. মাইকেল …")
    body = _casefold_ws(unicodedata.normalize("NFC", m.group(1)))
    folded = _casefold_ws(unicodedata.normalize("NFC", prompt))  # "য়" one code point or two
    hits = _ends_of(body, folded) if body else []
    more = "°%" if body[-1:].isdigit() else ""  # "B. 79" of "79°"
    nxt = [folded[e : e + 1] for e in hits]
    return bool(hits) and all(c and (c.isalnum() or "\u0980" <= c <= "\u09ff" or c in more) for c in nxt)


def _dangling_word(text: str) -> bool:
    """The text's last word (`_WORD`) is a function word that cannot end it. Searched from
    `_WORD_TAIL` characters before the end: `re` tries every start, scanning each word to its
    end (quadratic in a long answer); a word reaching back that far is no function word."""
    at = max(0, len(text) - _WORD_TAIL)
    word = _WORD.search(text, at)
    if word is None or (word.start() == at and at > 0):
        return False
    return word.group(0) != "A" and word.group(0).lower() in _DANGLING_WORDS


def _ends_of(part: str, text: str) -> list[int]:
    """Where each occurrence of `part` ends, left to right, not overlapping: what
    `re.finditer(re.escape(part), text)` finds, without compiling a pattern per line."""
    out, at = [], text.find(part)
    while at >= 0:
        out.append(at + len(part))
        at = text.find(part, at + len(part))
    return out


def _fragment_words(last_line: str) -> int:
    """Words after the line's last finished sentence (0 when it has none)."""
    ends = list(_SENTENCE_END.finditer(last_line))
    return _words(last_line[ends[-1].end() :]) if ends else 0


@functools.lru_cache(maxsize=4096)  # a prompt's replies (teachers, samples) ask again
def option_letters(prompt: str) -> str:
    """The option letters a multiple-choice prompt lists, in order ("" when it lists none)."""
    found = {m.group(1) for m in _PROMPT_OPTIONS.finditer(prompt)}
    if not {"A", "B", "C"} <= found:
        return ""
    out = "ABC"
    for letter in "DEFGHIJ":  # contiguous from A: a stray "I." in the text is not option I
        if letter not in found:
            break
        out += letter
    return out


def is_multiple_choice(prompt: str) -> bool:
    """The prompt lists options A, B, C (lines "A. …", "(B) …" or a dict {'A': …})."""
    return bool(option_letters(prompt))


def _no_final_result(text: str, prompt: str) -> bool:
    """A multiple-choice prompt whose answer commits to no letter, or a prompt that asks for
    `\\boxed{}` whose answer has none (the caller has seen it stop unpunctuated)."""
    if not prompt:
        return False
    if "\\boxed" in prompt and "\\boxed" not in text:
        return True
    return is_multiple_choice(prompt) and extract_choice(text)[1] == "no_choice"


def answer_cut(answer: str, prompt: str = "") -> str | None:
    """The evidence that this answer stops mid-way, or None (see the module table).

    `prompt` (optional) lets an answer that ends on one of the prompt's options or phrases
    count as finished, and a multiple-choice / boxed-answer prompt whose answer states no
    final result and stops unpunctuated count as cut."""
    text = answer.rstrip()
    if not text:
        return None
    if len(_FENCE.findall(text)) % 2:
        return "open_fence"
    prose = _without_code(text)
    if _open_boxed(prose):
        return "open_boxed"
    if _open_math(prose):
        return "open_math"
    last_line = text[text.rfind("\n") + 1 :]
    if _open_bold(last_line):
        return "open_bold"
    end = text[-1]
    spaced_or_numeric = len(text) > 1 and (text[-2] in " \t\n" or (end == "-" and text[-2] in "0123456789"))
    if end in _DANGLING_CHARS or end == "/" or (end in _OPERATORS and spaced_or_numeric):  # "2m =", "380-"
        return "dangling_end"
    if _OPEN_TAG_END.search(last_line) or (end == "." and text[-2:-1].isdecimal() and _BANGLA_DECIMAL_END.search(last_line)):
        return "dangling_end"  # "১০<", "∫<sub>"; "মোল ভগ্নাংশ = 0." (Bangla ends sentences with "।")
    if end == "-" and len(text) > 1 and (text[-2].isascii() and text[-2].isalpha() or text[-2] in "'\"*([{"):
        return "dangling_end"  # "x²-x-", "NATO-", "'-", "10^{-": a hyphen or minus after a letter or an opener
    if end in "√×÷" or (end in "⊂⊆∈∪∩" and text[-2:-1].isspace()) or _BARE_OPTION_END.search(last_line):
        return "dangling_end"  # "C: √", "B: 4×", "ℤ ⊂"; "**Answer:** D)": an option whose text is to come
    if end in "⁻⁺" and len(text) > 1 and text[-2].isdecimal():  # "5 × 10⁻": an exponent to come ("PO₄³⁻" is a charge)
        return "dangling_end"
    if _BARE_MARKER.match(last_line) or _BARE_NUMBER.search(text):
        return "dangling_end"  # a list item or step that has only its marker
    if _dangling_word(text):
        return "dangling_end"
    if text.endswith(_DANGLING_CJK) or text.rsplit(None, 1)[-1] in _DANGLING_BN:
        return "dangling_end"
    if end in "\"“'‘" and _opens_quote(last_line):
        return "dangling_end"
    if _open_label(last_line):
        return "open_label"
    if _open_bracket(last_line):
        return "open_bracket"
    cat = unicodedata.category(end)[0]
    decimal = end == "." and text[-2:-1].isdigit()  # "**Answer:** B. 0." of "0.40"
    if (cat in "LMN" or decimal) and _partial_option(last_line, prompt):
        return "partial_option"
    if _quotes_prompt(last_line, prompt):
        return None  # the prompt's own option or phrase
    if cat not in "LMN":  # symbols, emoji, closing punctuation: only a missing final result tells
        if _unfinished_before_span(text, last_line):
            return "unterminated_prose"
        return "no_final_result" if end not in ".!?。！？।*" and _no_final_result(text, prompt) else None
    if cat == "N":
        equation = any(c in last_line for c in "=⇒→≈")  # "k = ±8": a result line ends on its number
        if _fragment_words(last_line) >= _UNTERMINATED_NUMBER or (not equation and _unterminated(text, last_line)):
            return "unterminated_prose"
        return "no_final_result" if _no_final_result(text, prompt) else None
    if _unterminated(text, last_line):
        return "unterminated_prose"
    if _no_final_result(text, prompt):
        return "no_final_result"
    if _unfinished_line(last_line, alone=len(last_line) >= len(text)):
        return "unterminated_prose"
    return None


_ABBREV_END = re.compile(r"(?:^|[\s(*\[])(?:[A-J]|e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|St|No|Fig|Eq|approx)\.$", re.I)


# A line that opens with a label ("**Answer:**", "Final answer:", "সঠিক উত্তর:", "答案：").
_ANSWER_LABEL = re.compile(r"^\W{0,4}[^\W\d][^:：\n]{0,30}[:：]\s*(?:\*\*|__)?\s*\S")
_ANSWER_LINE_WORDS = 8
# Labels that introduce prose, not a result: what follows them must finish its sentence.
_PROSE_LABEL = re.compile(
    r"explanation|reasoning|reason|calculation|solution|analysis|note|step|ব্যাখ্যা|কারণ|বিশ্লেষণ|সমাধান|解释|解析|分析|理由",
    re.I,
)


def _finished_at(body: str) -> list[int]:
    """Offsets just after each finished sentence of `body` ("A." of an option and "e.g." are not)."""
    return [m.end() for m in _SENTENCE_END.finditer(body) if not _ABBREV_END.search(body[: m.start() + 1])]


def _unfinished_line(last_line: str, alone: bool) -> bool:
    """A prose last line (the caller saw it end on a letter) that does not finish: words after
    its last finished sentence, or no finished sentence and no final result stated on it.

    R1's answers end prose lines with punctuation; what may end bare is an answer line
    ("**Answer:** C. বেগ", "The correct answer is B"), a list item, a heading, a table row, an
    all-caps title or a short Chinese reply ("无法判断")."""
    line = last_line.strip()
    if not line or line.startswith(("#", "|", ">")):
        return False
    if not any(ch.islower() or ch.isalpha() and not ch.isascii() for ch in line):
        return False
    if len(line) < 10 and len(_CJK.findall(line)) * 2 > len(line):
        return False
    body = _OPTION.sub("", _LABEL.sub("", _LIST_ITEM.sub("", line, count=1), count=1), count=1)
    ends = _finished_at(body)
    if ends:
        fragment = body[ends[-1] :].strip()
        if fragment.startswith(("-", "—", "–", "#", "~")) or all(w.startswith("#") for w in fragment.split()):
            return False  # a quote's attribution ("… - Paul Rand") or hashtags
        return _words(fragment) >= 1
    if alone:
        return False  # a one-line reply without a full stop ("The capital of France is Paris")
    label = _ANSWER_LABEL.match(line)
    if label and _words(body) < _ANSWER_LINE_WORDS and not _PROSE_LABEL.search(label.group(0)):
        return False  # "**Answer:** Tetrahedron", "Answer: drink": a labelled final result
    if _LIST_ITEM.match(line) or _ANSWER_OPTION.match(line):
        return False  # a list of phrases; an answer line that names its option
    after_bold = line.rsplit("**", 1)[-1] if line.count("**") >= 2 else ""
    if extract_choice(line)[0] is not None and _words(re.split(r"\)", after_bold)[-1]) < _UNTERMINATED_ITEM:
        return False  # "The correct answer is **B**", not "… **A: 0°** because work done is maximized when"
    return re.match(r"^\W*\[?[A-J]\]", _LABEL.sub("", line)) is None  # "**সঠিক উত্তর:** [C] ঝড়"


# A closed span at the end of a line: "(P)", "(Directly Proportional)", "`k`", "**x**", "\\( A \\)".
_CLOSING_SPAN = re.compile(r"\s*(?:\([^()\n]*\)|（[^（）\n]*）|`[^`\n]+`|\*\*[^*\n]+\*\*|\\\(.*?\\\)|\$[^$\n]+\$)$")


def _unfinished_before_span(text: str, last_line: str) -> bool:
    """The line ends on a closed span (a gloss in brackets, inline code or math, bold) and the
    prose before it is an unfinished sentence ("… যেখানে চাপ (P)", "When a 3×3 matrix \\( A \\)");
    an answer line ("**Answer:** A (C₆H₅COOH)", "The answer is (B)") is not."""
    m = _CLOSING_SPAN.search(last_line)
    if m is None or m.start() == 0:
        return False
    head = last_line[: m.start()].rstrip()
    if not head or _OPTION_LETTER_END.search(last_line) or _ANSWER_OPTION.match(last_line.strip()):
        return False  # "The answer is (B)", "**Answer:** A (C₆H₅COOH)", "B. text (gloss)"
    if head[-1] in ",，、":
        return True  # "Thus, **CH₄**", "Among the options, **A (১৫%)**": the sentence goes on
    if unicodedata.category(head[-1])[0] not in "LM" or _OPTION_LETTER_END.search(head):
        return False
    body = text[: len(text) - len(last_line)] + head
    return _unterminated(body, head) or _unfinished_line(head, alone=len(head) >= len(body))
