"""Chinese phrasings of IFEval's instructions → constraints (same ids and kwargs as English).

A character budget ("不超过100字") is not IFEval's number_words (which counts \\w+ runs, and a
Chinese clause is one run), so it is not emitted; "个单词" / "个词" limits are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from builder.constraints.detect_en import odd_free
from builder.constraints.numbers import ZH_NUM, zh_number, zh_relation

Found = list[tuple[str, dict[str, Any]]]
_Q = r"[\"“”'‘’「」『』]"
_ITEM = r"[\"“'‘「『](?P<w>[^\"”'’」』\n]{1,30})[\"”'’」』]"
# Multi-character negations only: 不 alone sits inside ordinary words (不仅, 不同, 不用担心).
_NEG_WORDS = r"(?:不要|不得|不能|不可|不准|禁止|避免|切勿|不许|不应|不允许|请勿)"
_NEG = r"(?:不要|不得|不能|不可|不准|禁止|避免|切勿|别|勿|不许|不应|不允许|不)"
_LANGS = {"英文": "en", "英语": "en", "中文": "zh", "汉语": "zh", "日语": "ja", "日文": "ja", "韩语": "ko", "韩文": "ko",
          "法语": "fr", "德语": "de", "西班牙语": "es", "俄语": "ru", "阿拉伯语": "ar", "意大利语": "it",
          "葡萄牙语": "pt", "越南语": "vi", "泰语": "th", "印地语": "hi", "孟加拉语": "bn"}  # fmt: skip


def _quoted_list(s: str) -> list[str]:
    q = [m.group("w").strip() for m in re.finditer(_ITEM, s)]
    if q:
        return q
    s = re.split(r"[。；;，,\n]|这些|等词|在(?:你的)?回答|的?词", s, maxsplit=1)[0]
    return [w.strip() for w in re.split(r"[、和与及/]|以及|或", s) if w.strip()][:8]


def _count(text: str, unit: str, cid: str, key: str) -> Found:
    out: Found = []
    for m in re.finditer(rf"(?P<n>{ZH_NUM})\s*(?:个)?\s*(?:{unit})", text):
        n = zh_number(m.group("n"))
        if n is None:
            continue
        if "每" in re.split(r"[。！？\n]", text[: m.start()])[-1][-12:]:
            continue  # 每个短句不超过15个单词: per item, not the reply's length
        got = zh_relation(text[max(0, m.start() - 8) : m.start()], n, text[m.end() - 2 : m.end() + 6].lstrip(m.group(0)[-1:]))
        if got is None:
            got = zh_relation(text[max(0, m.start() - 8) : m.start()], n, text[m.end() : m.end() + 6])
        if got:
            out.append((cid, {"relation": got[0], key: got[1]}))
    return out


def _always(words: tuple[str, ...]) -> bool:
    return True


# Each rule below is gated by a substring its pattern cannot match without (a set test on the
# substrings found in one pass, ~100x cheaper than the pattern): most Chinese prompts state no
# constraint and skip them all.
_NEG_WORD_LIST = ("不要", "不得", "不能", "不可", "不准", "禁止", "避免", "切勿", "不许", "不应", "不允许", "请勿")
_END_WORDS = ("结尾", "结束", "收尾", "最后一句", "末尾")


# Every substring a `has` test below reads (tests/test_detect_literals.py checks the list is whole).
WORDS = ("逗号", "词", "句", "段", "项目符号", "要点", "列表项", "条目", "bullet", "突出显示", "高亮", "强调", "加粗标出",
         "SECTION", "Section", "PART", "Part", "PARAGRAPH", "Paragraph", "<<", "双尖括号", "双书名号", "重复", "复述",
         "******", "回答", "回复", "版本", *_END_WORDS, "P.", "占位符", "小写", "大写", *_NEG_WORD_LIST, "出现", "关键字",
         "字母", "双引号", *_LANGS)  # fmt: skip
_LANG_WORDS, _LANG_NAMES = tuple(_LANGS), "|".join(_LANGS)
# Their lower-case forms (and two English triggers read below), for detect.py's one pass over the
# lower-cased prompt: a word is in the prompt only if its lower-case form is in the lower-cased
# prompt (then `in` confirms it).
_FORMS = {lw: tuple(w for w in dict.fromkeys(WORDS) if w.lower() == lw) for lw in {w.lower() for w in WORDS}}
_FORM_KEYS = frozenset(_FORMS)
LITERALS = _FORM_KEYS | {"my answer is", "json"}


def rules(text: str, gated: bool = True, found: set[str] | None = None) -> Found:
    """`found`: the LITERALS the lower-cased text holds (detect.py's one pass); found here when not given."""
    out: Found = []
    has, exact, lits = _always, False, set()  # exact: `lits` stands in for re.I searches (case_gate)
    if gated:
        exact = odd_free(text)
        lits = found if found is not None else {w for w in LITERALS if w in text.lower()}
        # the WORDS the prompt holds; has(words): those of `words` it holds (a set, true when not empty)
        held = {w for lw in _FORM_KEYS.intersection(lits) for w in _FORMS[lw] if w in text}
        if not held and exact and "my answer is" not in lits and "json" not in lits:
            return out  # every rule below needs one of these
        has = held.intersection
    if has(("逗号",)) and re.search(rf"{_NEG}[^。；\n]{{0,8}}(?:使用|用|出现|包含|带有?|含有?|加)?[^。；\n]{{0,4}}(?:任何)?逗号", text):
        out.append(("punctuation:no_comma", {}))
    if has(("词",)):  # 单词 / 英文词 / 个词
        out += _count(text, r"个?(?:英文)?单词|个英文词|个词(?!语)", "length_constraints:number_words", "num_words")
    if has(("句",)):
        out += _count(text, r"句话|句(?!号)|个句子", "length_constraints:number_sentences", "num_sentences")
    n_para = re.search(rf"(?P<n>{ZH_NUM})\s*(?:个)?(?:段落|段)", text) if has(("段",)) else None
    nth = None if n_para is None else re.search(rf"第(?P<k>{ZH_NUM}|最后一)段(?:必须|要|应该?|需要?)?(?:以|用)\s*{_Q}?(?P<w>[\w'-]+){_Q}?\s*(?:这个词|一词)?(?:开头|开始)", text)
    if nth and n_para:
        total = zh_number(n_para.group("n"))
        k = total if nth.group("k") == "最后一" else zh_number(nth.group("k"))
        if total and k:
            out.append(("length_constraints:nth_paragraph_first_word",
                        {"num_paragraphs": total, "nth_paragraph": k, "first_word": nth.group("w").lower()}))  # fmt: skip
    elif n_para and re.search(r"\*\*\*(?!\*)|分隔线|分割线|三个星号", text):
        out.append(("length_constraints:number_paragraphs", {"num_paragraphs": zh_number(n_para.group("n"))}))
    m = re.search(rf"(?P<n>{ZH_NUM})\s*(?:个|条|点)?\s*(?:项目符号|要点|列表项|条目|bullet)", text) \
        if has(("项目符号", "要点", "列表项", "条目", "bullet")) else None
    if m and re.search(r"项目符号|markdown|\*|列表|要点", text, re.I):
        out.append(("detectable_format:number_bullet_lists", {"num_bullets": zh_number(m.group("n"))}))
    if (exact is False or "my answer is" in lits) and re.search(r"my answer is (?:yes|no|maybe)", text, re.I):
        out.append(("detectable_format:constrained_response", {}))
    m = has(("突出显示", "高亮", "强调", "加粗标出")) and (
        re.search(rf"(?:突出显示|高亮|强调|加粗标出)(?:至少)?\s*(?P<n>{ZH_NUM})\s*(?:个|处)", text) or
        re.search(rf"(?:至少)?\s*(?P<n>{ZH_NUM})\s*(?:个|处)(?:部分|段落|内容)?[^。\n]{{0,10}}(?:突出显示|高亮)", text))  # fmt: skip
    if m:
        out.append(("detectable_format:number_highlighted_sections", {"num_highlights": zh_number(m.group("n"))}))
    m = has(("SECTION", "Section", "PART", "Part", "PARAGRAPH", "Paragraph")) and \
        re.search(r"\b(?P<sp>SECTION|Section|PART|Part|PARAGRAPH|Paragraph)\s+(?:X|1)\b", text)
    if m:
        k = re.search(rf"(?P<n>{ZH_NUM})\s*(?:个)?(?:部分|章节|节)", text)
        if k:
            out.append(("detectable_format:multiple_sections", {"section_spliter": m.group("sp"), "num_sections": zh_number(k.group("n"))}))
    if (exact is False or "json" in lits) and re.search(r"json", text, re.I) and re.search(r"格式|输出|包裹|回答|回复|形式", text):
        out.append(("detectable_format:json_format", {}))
    if has(("<<", "双尖括号", "双书名号")) and re.search(r"<<[^<>\n]*>>|双尖括号|双书名号", text):
        out.append(("detectable_format:title", {}))
    m = has(("重复", "复述")) and re.search(r"(?:先|首先)[^。\n]{0,6}(?:逐字|原样|一字不差地)?(?:重复|复述)(?:一遍|一下)?(?:我的|这个|上面的|以下的?|下面的)?(?:请求|问题|指令|要求)", text)
    if m:
        below = re.search(r"以下|下面", m.group(0))
        after = re.search(r"然后(?:再)?(?:回答|作答|答复)[^：:\n]{0,6}[：:]\s*(?P<q>.+)", text[m.end() :], re.S)
        if after:
            req = after.group("q").strip()
        else:
            req = text[m.end() :].split("\n\n", 1)[-1].strip() if below else text[: m.start()].rstrip(" ，,。请").strip()
        if req:
            out.append(("combination:repeat_prompt", {"prompt_to_repeat": req}))
    if has(("******", "回答", "回复", "版本")) and re.search(r"\*{6}|(?:两|2)(?:个|种)(?:不同的)?(?:回答|回复|版本)", text):
        out.append(("combination:two_responses", {}))
    m = has(_END_WORDS) and (re.search(rf"(?:以|用)\s*{_ITEM}\s*(?:这句话|这个短语|这句)?(?:结尾|结束|收尾)", text) or
                                     re.search(rf"(?:结尾|最后一句话?|末尾)(?:必须|要|应该?|需要?)?(?:是|为)\s*[:：]?\s*{_ITEM}", text))  # fmt: skip
    if m:
        out.append(("startend:end_checker", {"end_phrase": m.group("w").strip()}))
    # "双引号" is in WORDS for the early return above, and tested as is here (`has` is always true ungated)
    if "双引号" in text and re.search(r"(?:整个|全部|整篇|所有)[^。\n]{0,8}(?:回答|回复|内容|输出)|(?:包裹|括起|包起来|括住)", text):
        out.append(("startend:quotation", {}))
    m = has(("P.",)) and re.search(r"P\.\s?P\.\s?S|P\.\s?S\.?", text)
    if m and re.search(r"附言|后记|附注|结尾|末尾|最后", text):
        out.append(("detectable_content:postscript", {"postscript_marker": "P.P.S" if "P.P" in m.group(0) else "P.S."}))
    m = has(("占位符",)) and re.search(rf"(?:至少)?\s*(?P<n>{ZH_NUM})\s*个[^。\n]{{0,12}}占位符", text)
    if m:
        out.append(("detectable_content:number_placeholders", {"num_placeholders": zh_number(m.group("n"))}))
    if has(("小写",)) and re.search(r"(?:全部|全都|都|只|仅)(?:使用|用)?小写|小写字母", text) and not re.search(r"大写字母的?单词", text):
        out.append(("change_case:english_lowercase", {}))
    elif has(("大写",)) and re.search(r"(?:全部|全都|都|只|仅)(?:使用|用)?大写|全大写(?!的?单词)|大写字母(?!的?单词)", text):
        out.append(("change_case:english_capital", {}))
    m = has(("大写",)) and re.search(rf"(?:全大写|大写)的?单词[^。\n]{{0,10}}?(?P<pre>至少|不少于|少于|不超过|最多)?\s*(?P<n>{ZH_NUM})\s*次", text)
    if m:
        got = zh_relation(m.group("pre") or "", zh_number(m.group("n")) or 0, text[m.end() : m.end() + 4])
        if got:
            out.append(("change_case:capital_word_frequency", {"capital_relation": got[0], "capital_frequency": got[1]}))
    out += _words(text, has)
    return out


def _words(text: str, has: Callable[[tuple[str, ...]], Any]) -> Found:
    out: Found = []
    forb: list[str] = []
    for m in () if not has(_NEG_WORD_LIST) else re.finditer(rf"{_NEG_WORDS}[^。；\n]{{0,4}}(?:使用|出现|包含|提到|提及|说|用)(?:以下|下列|这些)?(?:的)?(?P<named>词语|词汇|关键词|词|字眼)?[:：]?\s*(?P<rest>[^。；\n]+)", text):
        rest = m.group("rest")
        if re.match(r"\s*(?:任何)?逗号|字母", rest):
            continue
        quoted = [q.group("w").strip() for q in re.finditer(_ITEM, rest)]
        starts_quoted = re.match(r"\s*[:：]?\s*[\"“'‘「『]", rest) is not None
        if (quoted and starts_quoted) or (m.group("named") and re.match(r"\s*[:：]", text[m.end("named") :])):
            forb += quoted or _quoted_list(rest)
    forb = [w for w in dict.fromkeys(forb) if w]
    if forb:
        out.append(("keywords:forbidden_words", {"forbidden_words": forb}))
    counted: set[str] = set()
    for m in () if not has(("出现",)) else re.finditer(rf"{_ITEM}\s*(?:这个词|一词|这个单词)?[^。；\n]{{0,6}}?(?P<pre0>至少|不少于|少于|不超过|最多|超过)?出现(?P<pre>至少|不少于|少于|不超过|最多|超过)?\s*(?P<n>{ZH_NUM})\s*次(?P<post>以上|或以上|以内|以下)?", text):
        n = zh_number(m.group("n"))
        got = zh_relation(m.group("pre") or m.group("pre0") or "", n or 0, m.group("post") or "") if n is not None else None
        if got is None and n is not None:
            continue
        if got:
            counted.add(m.group("w"))
            out.append(("keywords:frequency", {"keyword": m.group("w"), "relation": got[0], "frequency": got[1]}))
    for m in () if not has(("词", "关键字")) else re.finditer(r"(?:包含|包括|使用|提到|提及|用到)(?:以下|下列|这些)?(?:的)?(?:关键词|关键字|词语|单词|词)[:：]?\s*(?P<rest>[^。；\n]+)", text):
        if re.search(rf"{_NEG}\s*$", text[max(0, m.start() - 4) : m.start()]):
            continue
        quoted = [q.group("w").strip() for q in re.finditer(_ITEM, m.group("rest"))]
        ws = [w for w in quoted if w not in counted and w not in forb]  # a keyword list is quoted: "…"、"…"
        if ws:
            out.append(("keywords:existence", {"keywords": ws}))
    for m in () if not has(("字母",)) else re.finditer(rf"字母\s*{_Q}?(?P<l>[A-Za-z]){_Q}?[^。；\n]{{0,6}}?(?P<pre>至少|不少于|少于|不超过|最多)?\s*(?:出现)?\s*(?P<pre2>至少|不少于|少于|不超过|最多)?\s*(?P<n>{ZH_NUM})\s*次", text):
        pre = m.group("pre") or m.group("pre2") or ""
        got = zh_relation(pre, zh_number(m.group("n")) or 0, text[m.end() : m.end() + 4])
        if got:
            out.append(("keywords:letter_frequency", {"letter": m.group("l").lower(), "let_relation": got[0], "let_frequency": got[1]}))
    for m in () if not has(("字母",)) else re.finditer(rf"{_NEG}[^。；\n]{{0,6}}字母\s*{_Q}?(?P<l>[A-Za-z]){_Q}?", text):
        out.append(("keywords:letter_frequency", {"letter": m.group("l").lower(), "let_relation": "less than", "let_frequency": 1}))
    names = _LANG_NAMES
    m = has(_LANG_WORDS) and (re.search(rf"(?:只|仅|全部|全程|完全|必须|请)(?:能|可以)?(?:使用|用)(?P<l>{names})(?:来)?(?:回答|回复|作答|写|撰写|输出)", text) or \
        re.search(rf"(?:回答|回复|输出)(?:必须|只能|应)?(?:全部)?(?:使用|用)(?P<l>{names})(?:[,，。]|$)?[^。]{{0,6}}(?:不(?:允许|得|能)(?:使用)?其他语言)?", text))  # fmt: skip
    if m:
        out.append(("language:response_language", {"language": _LANGS[m.group("l")]}))
    return out
