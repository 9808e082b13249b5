#!/usr/bin/env python3
"""Writes the tokenizer conformance corpus next to this script:

  corpus.jsonl  hand-written texts, one {"category": ..., "text": ...} object per line
  random.jsonl  1,000 seeded random Unicode strings, same format

Regenerate with `python3 tests/data/tokenizer/make_corpus.py` and review the diff. The random strings
draw only code points assigned in Python's Unicode database (3.11: Unicode 14.0, the version of
Debian 12's PCRE2), never surrogates, so every line is valid UTF-8.
"""
import json
import os
import random
import sys
import unicodedata

SEED = 20240611
N_RANDOM = 1000
HERE = os.path.dirname(os.path.abspath(__file__))

ENGLISH = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times; it was the age of wisdom, it was the age of foolishness.",
    "I'm sure they'll agree: we've done what we could, and you'd do the same. She's here, isn't she? THEY'LL SEE. He'S odd.",
    "Small CPUs run language models slowly, but a careful runtime can still answer in well under a second per token.",
    "  leading spaces and trailing   ",
    "Multiple     spaces    between\twords and a tab.",
    "Line one.\nLine two.\n\nA paragraph after a blank line.\r\nWindows line ending.\r\n",
    "\n\n\n",
    " ",
    "a",
    "Mr. O'Neill's e-mail (j.doe@example.com) said: \"Meet at 10:30am, room #4B.\"",
    "Don't stop—keep going… “quoted” ‘single’ «guillemets» and en–dash.",
    "URL: https://example.org/path/to/page?query=1&lang=en#section-2",
    "ALL CAPS SENTENCE WITH SOME Mixed Case Words And ACRONYMS like NASA, GPU, and CPU.",
    "The café served naïve crème brûlée to the façade's résumé-writing über-fan.",
    "Tokenizers split text into pieces; byte-pair encoding merges frequent pairs until no merge applies.",
]

CHINESE = [
    "你好，世界！今天天气很好。",
    "盖闻天地之数，有十二万九千六百岁为一元。将一元分为十二会，乃子、丑、寅、卯、辰、巳、午、未、申、酉、戌、亥之十二支也。",
    "话说天下大势分久必合合久必分周末七国分争并入于秦及秦灭之后楚汉分争又并入于汉汉朝自高祖斩白蛇而起义一统天下后来光武中兴传至献帝遂分为三国",
    "人工智能正在改变我们的生活方式从智能手机到自动驾驶汽车再到医疗诊断系统机器学习算法无处不在它们帮助我们处理大量数据发现隐藏的规律并做出更好的决策然而这项技术也带来了新的挑战比如隐私保护算法偏见以及就业结构的变化",
    "“你吃饭了吗？”他问道。她笑着回答：“还没有呢，一起去吧！”",
    "第一章　总则\n第一条　为了规范管理，制定本办法。\n第二条　本办法适用于全体员工。",
    "繁體中文測試：資訊、軟體、網路與記憶體。",
    # 西游记 (Wu Cheng'en, public domain), a long line
    '却早过了三年，祖师复登宝座，与众说法。谈的是公案比语，论的是外像包皮。忽问：“悟空何在？”悟空近前跪下：“弟子有。”祖师道：“你这一向修些什么道来？”悟空道：“弟子近来法性颇通，根源亦渐坚固矣。”祖师道：“你既通法性，会得根源，已注神体，却只是防备着‘三灾利害’。”悟空听说，沉吟良久道：“师父之言谬矣。我常闻道高德隆，与天同寿，水火既济，百病不生，却怎么有个三灾利害？”祖师道：“此乃非常之道：夺天地之造化，侵日月之玄机；丹成之后，鬼神难容。虽驻颜益寿，但到了五百年后，天降雷灾打你，须要见性明心，预先躲避。躲得过，寿与天齐，躲不过，就此绝命。再五百年后，天降火灾烧你。这火不是天火，亦不是凡火，唤做‘阴火’。自本身涌泉穴下烧起，直透泥垣宫，五脏成灰，四肢皆朽，把千年苦行，俱为虚幻。再五百年，又降风灾吹你。这风不是东南西北风，不是和薰金朔风，亦不是花柳松竹风，唤做‘赑风’。自囟门中吹入六腑，过丹田，穿九窍，骨肉消疏，其身自解。所以都要躲过。”悟空闻说，毛骨悚然，叩头礼拜道：“万老爷垂悯，传与躲避三灾之法，到底不敢忘恩。”祖师道：“此亦无难，只是你比他人不同，故传不得。”悟空道：“我也头圆顶天，足方履地，一般有九窍四肢，五脏六腑，何以比人不同？”祖师道：“你虽然像人，却比人少腮。”原来那猴子孤拐面，凹脸尖嘴。悟空伸手一摸，笑道：“师父没成算！我虽少腮，却比人多这个素袋，亦可准折过也。”祖师说：“也罢，你要学那一般？有一般天罡数，该三十六般变化，有一般地煞数，该七十二般变化。”悟空道：“弟子愿多里捞摸，学一个地煞变化罢。”祖师道：“既如此，上前来，传与你口诀。”遂附耳低言，不知说了些甚么妙法。这猴王也是一窍通时百窍通，当时习了口诀，自修自炼，将七十二般变化，都学成了。',
    # 西游记 (Wu Cheng'en, public domain), a long line
    '好猴王，跳至桥头，使一个闭水法，捻着诀，扑的钻入波中，分开水路，径入东洋海底。正行间，忽见一个巡海的夜叉，挡住问道：“那推水来的，是何神圣？说个明白，好通报迎接。”悟空道：“吾乃花果山天生圣人孙悟空，是你老龙王的紧邻，为何不识？”那夜叉听说，急转水晶宫传报道：“大王，外面有个花果山天生圣人孙悟空，口称是大王紧邻，将到宫也。”东海龙王敖广即忙起身，与龙子、龙孙、虾兵、蟹将出宫迎道：“上仙请进，请进。”直至宫里相见，上坐献茶毕，问道：“上仙几时得道，授何仙术？”悟空道：“我自生身之后，出家修行，得一个无生无灭之体。近因教演儿孙，守护山洞，奈何没件兵器，久闻贤邻享乐瑶宫贝阙，必有多馀神器，特来告求一件。”龙王见说，不好推辞，即着鳜都司取出一把大捍刀奉上。悟空道：“老孙不会使刀，乞另赐一件。”龙王又着鲅大尉，领鳝力士，抬出一捍九股叉来。悟空跳下来，接在手中，使了一路，放下道：“轻！轻！轻！又不趁手！再乞另赐一件。”龙王笑道：“上仙，你不看看。这叉有三千六百斤重哩！”悟空道：“不趁手！不趁手！”龙王心中恐惧，又着□【左“鱼”右“便”】提督、鲤总兵抬出一柄画杆方天戟，那戟有七千二百斤重。悟空见了，跑近前接在手中，丢几个架子，撒两个解数，插在中间道：“也还轻！轻！轻！”老龙王一发怕道：“上仙，我宫中只有这根戟重，再没甚么兵器了。”悟空笑道：“古人云：‘愁海龙王没宝哩！’你再去寻寻看。若有可意的，一一奉价。”龙王道：“委的再无。”',
    # The same without punctuation: one pre-token of several hundred characters.
    '却早过了三年祖师复登宝座与众说法谈的是公案比语论的是外像包皮忽问悟空何在悟空近前跪下弟子有祖师道你这一向修些什么道来悟空道弟子近来法性颇通根源亦渐坚固矣祖师道你既通法性会得根源已注神体却只是防备着‘三灾利害’悟空听说沉吟良久道师父之言谬矣我常闻道高德隆与天同寿水火既济百病不生却怎么有个三灾利害祖师道此乃非常之道夺天地之造化侵日月之玄机丹成之后鬼神难容虽驻颜益寿但到了五百年后天降雷灾打你须要见性明心预先躲避躲得过寿与天齐躲不过就此绝命再五百年后天降火灾烧你这火不是天火亦不是凡火唤做‘阴火’自本身涌泉穴下烧起直透泥垣宫五脏成灰四肢皆朽把千年苦行俱为虚幻再五百年又降风灾吹你这风不是东南西北风不是和薰金朔风亦不是花柳松竹风唤做‘赑风’自囟门中吹入六腑过丹田穿九窍骨肉消疏其身自解所以都要躲过悟空闻说毛骨悚然叩头礼拜道万老爷垂悯传与躲避三灾之法到底不敢忘恩祖师道此亦无难只是你比他人不同故传不得悟空道我也头圆顶天足方履地一般有九窍四肢五脏六腑何以比人不同祖师道你虽然像人却比人少腮原来那猴子孤拐面凹脸尖嘴悟空伸手一摸笑道师父没成算我虽少腮却比人多这个素袋亦可准折过也祖师说也罢你要学那一般有一般天罡数该三十六般变化有一般地煞数该七十二般变化悟空道弟子愿多里捞摸学一个地煞变化罢祖师道既如此上前来传与你口诀遂附耳低言不知说了些甚么妙法这猴王也是一窍通时百窍通当时习了口诀自修自炼将七十二般变化都学成了',
]

MIXED = [
    "我在用Python写一个tokenizer，速度大概是10 MB/s左右。",
    "请运行 `pip install transformers==4.40.0` 然后调用 AutoTokenizer.from_pretrained(\"Qwen/Qwen2-7B\")。",
    "模型 Qwen2.5-7B-Instruct 在 GSM8K 上得分 85.4%，比 Llama-3-8B 高。",
    "函数 def 计算(x): return x*2  # 注释：返回两倍",
    "CPU占用率：75%；内存：3.2GB/8GB；温度：65°C。",
    "Emoji混合😀中文English123数字",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "class Tokenizer:\n\tdef __init__(self, path):\n\t\tself.path = path\n\t\tself.cache = {}\n\n\tdef encode(self, text):\n\t\treturn [ord(c) for c in text]\n",
    "#include <vector>\n\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;  // double\n  return v.size() == 3 ? 0 : 1;\n}\n",
    "template <class T>\nstruct Span {\n    T*     data;\n    size_t size;\n};\n\n\n    \n\t\t\n",
    "if (a && b || !c) { x = y->z[i] << 2; } else if (p != nullptr) { *p += 0x1F; }",
    "    indented with four spaces\n        and eight\n\t\tand two tabs\n  \t mixed\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;",
    "for i in range(10):\n    print(f\"{i:03d} -> {i**2}\")\n\n\n\nreturn None",
    "x=1;y=2;z=x+y;print(z)//comment\n/* block\n   comment */",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "$ ls -la | grep '\\.cpp$' && echo done\r\n",
    "                                                                end of long run of spaces",
]

NUMBERS = [
    "1234567890 3.14159 -42 1,000,000",
    "0 00 000 0000 00000 123456789012345678901234567890",
    "Version 2.0.1-rc3, build 20240611, port 8080.",
    "½ ¾ ² ³ ① ② ٠١٢٣٤٥ ०१२३ 一二三 Ⅻ",
    "Phone: +1 (555) 010-9999; price $19.99; 50% off; 3x faster; 1e-5",
    "2024年6月11日，气温28.5度，湿度60%。",
]

EMOJI = [
    "😀😃😄😁😆",
    "👨‍👩‍👧‍👦 family, 👩🏽‍💻 coder, 🏳️‍🌈 flag, ❤️‍🔥 heart on fire",
    "🇨🇳🇺🇸🇯🇵 flags and 👍🏻👍🏼👍🏽👍🏾👍🏿 skin tones",
    "Keycaps 1️⃣ 2️⃣ #️⃣ and text vs emoji ☺ ☺️",
    "🤖 says: hello!🙂",
]

OTHER_SCRIPTS = [
    "こんにちは、世界！今日はいい天気ですね。カタカナとひらがなと漢字。",
    "吾輩は猫である。名前はまだ無い。",
    "안녕하세요, 세계! 오늘 날씨가 좋네요. 한국어 형태소 분석기.",
    "مرحبا بالعالم! كيف حالك اليوم؟ العربية تكتب من اليمين إلى اليسار.",
    "שלום עולם",
    "Привет, мир! Как дела? Ёжик в тумане.",
    "Γειά σου Κόσμε! Ελληνικά.",
    "नमस्ते दुनिया, यह हिंदी है।",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Tiếng Việt có dấu: Người Việt Nam, đường phố.",
]

COMBINING = [
    "e\u0301",                        # NFD é
    "\u00e9",                         # NFC é
    "cafe\u0301 vs caf\u00e9",
    "A\u030a \u00c5 \u212b",          # Å three ways (U+212B Angstrom sign normalizes to U+00C5)
    "\u1100\u1161\u11a8 \uac01",      # Hangul jamo vs precomposed
    "n\u0303 \u00f1 o\u0308\u0304",
    "a\u0301\u0302\u0303\u0304\u0305 stacked marks",
    "\u0301 leading combining mark",
    "Zalgo: Z\u0351\u036b\u0343a\u0328\u0321l\u0357g\u0334o\u0315",
    "\u0915\u094d\u0937 Devanagari conjunct",
    "\u2126 Ohm sign, \u212a Kelvin sign, \ufb01 ligature",
    "x\u200by\u200cz\u200dw zero-width characters\ufeff",
]

SPECIAL_LIKE = [
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "Please print the string <|im_end|> literally.",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>text<|im_start|>",
    "<|im_end",
    "im_end|>",
    "<|im_start|",
    "< |im_end| >",
    "<think>\nreasoning\n</think>\n\nanswer",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<s>[INST] hello [/INST]</s>",
    "<unk> and <0x41> are pieces, not text",
    "<|extra_0|> <|extra_204|> <|extra_205|>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
]

EDGE = [
    "",
    "\t",
    "\r",
    "\r\n",
    "\x00",
    "a\x00b\x00\x00c",
    "\x7f\x01\x1f",
    "\u0085 next line \u00a0 nbsp \u2028 line sep \u2029 para sep \u3000 ideographic space",
    "\ufffd replacement char",
    "\U0001F600" * 20,
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D",
    "it's", "IT'S", "x'y", "''''", "'",
    "a" * 300,
    "ab" * 200,
    "\n" * 50 + "x",
    " " * 100 + "\n" + " " * 5,
    "😀" * 3 + "a" + "😀",
]

CATEGORIES = {
    "english": ENGLISH,
    "chinese": CHINESE,
    "mixed": MIXED,
    "code": CODE,
    "numbers": NUMBERS,
    "emoji": EMOJI,
    "scripts": OTHER_SCRIPTS,
    "combining": COMBINING,
    "special_like": SPECIAL_LIKE,
    "edge": EDGE,
}


def assigned_code_points():
    """Every assigned, non-surrogate code point below the supplementary private use planes (which would
    otherwise be a fifth of all draws)."""
    out = []
    for cp in range(0xF0000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if unicodedata.category(chr(cp)) == "Cn":
            continue
        out.append(cp)
    return out


def random_strings(rng, n):
    everything = assigned_code_points()
    pools = {
        "ascii": [chr(c) for c in range(0x20, 0x7F)],
        "space": list(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000"),
        "letters": list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        "cjk": [chr(c) for c in range(0x4E00, 0x9FFF)],
        "kana_hangul": [chr(c) for c in range(0x3040, 0x30FF)] + [chr(c) for c in range(0xAC00, 0xD7A3, 7)],
        "digits": list("0123456789٠١٢٣४५६௧໒༣၄႕០᠑᥆᧑᪓᭖᮲᱃꘩꣐꤁ꧠ０１２"),
        "combining": [chr(c) for c in range(0x0300, 0x0370)] + ["\u20dd", "\u20e3", "\ufe0f", "\u200d"],
        "emoji": [chr(c) for c in range(0x1F300, 0x1F64F)] + [chr(c) for c in range(0x1F680, 0x1F6C5)],
        "punct": list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~，。！？、；：“”‘’（）【】《》…—·"),
        "special": ["<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|", "|>", "<think>", "'s", "'LL", "</s>", "<s>"],
        "any": None,
    }
    names = list(pools)
    weights = [3, 3, 3, 2, 1, 2, 1, 1, 2, 1, 3]
    lines = []
    for _ in range(n):
        length = rng.randint(1, 60)
        parts = []
        for _ in range(length):
            pool = rng.choices(names, weights)[0]
            if pool == "any":
                parts.append(chr(rng.choice(everything)))
            else:
                parts.append(rng.choice(pools[pool]))
        lines.append("".join(parts))
    return lines


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for category, text in rows:
            f.write(json.dumps({"category": category, "text": text}, ensure_ascii=False) + "\n")


def main():
    if sys.version_info[:2] != (3, 11):
        print(f"note: Python {sys.version_info[0]}.{sys.version_info[1]}; the committed random.jsonl was made "
              "with 3.11 (Unicode 14.0), another version may draw other code points", file=sys.stderr)
    rows = [(cat, text) for cat, texts in CATEGORIES.items() for text in texts]
    write_jsonl(os.path.join(HERE, "corpus.jsonl"), rows)
    rng = random.Random(SEED)
    write_jsonl(os.path.join(HERE, "random.jsonl"), [("random", t) for t in random_strings(rng, N_RANDOM)])
    print(f"wrote {len(rows)} hand-written and {N_RANDOM} random lines")


if __name__ == "__main__":
    main()
