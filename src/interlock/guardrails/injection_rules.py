"""Weighted patterns of the rule-based injection detector, over normalised (lower-case) text.

Each rule: a name, trigger substrings (the pattern runs only near one), the pattern and its weight.
Rules match UTF-8 bytes: substring search on bytes costs one byte per character whatever the text holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    triggers: tuple[bytes, ...]
    pattern: re.Pattern[bytes]
    weight: float
    indirect: bool = False
    weak: bool = False


_W = r"(?:\S+\s+)"  # one word and the space after it
_TARGET = (
    r"(?:\S*struct\S*|instr\S*|direct(?:ion|ive)\S*|prompts?|rules?|guidelines?|commands?|context|orders?|programming"
    r"|restrictions?|constraints?|polic(?:y|ies)|tasks?|assignments?|information|documents?|articles?|statements?"
    r"|guidance|settings?|input|thoughts)"
)
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|former|foregoing|all|any|every|your|system|the"
    r"|those|these|last|old|current|given|certain|secret|hidden)"
)
_ASK = (
    r"(?:repeat|list|reveal|print|show|tell|give|provide|summari[sz]e|recite|display|output|spell|write|dump|leak"
    r"|share|copy|what (?:is|are|were|was)|what's|what other|summary of)"
)

# Strong rules: each is evidence on its own. Triggers are substrings rare in ordinary prompts.
_STRONG: list[tuple[str, tuple[str, ...], str, float]] = [
    ("override", ("ignor", "disregard", "forg", "instruction"),
     rf"\b(?:ignor\w*|disregard\w*|forget\w*|bypass|override|abandon|skip|neglect|overlook|subvert|cancel|erase)\s+{_W}{{0,2}}?{_PRIOR}\s+{_W}{{0,2}}?{_TARGET}", 0.9),
    ("instructions_query", ("instruction", "system message", "system prompt", "told"),
     rf"\b{_ASK}\b[^.?!\n]{{0,40}}?(?:(?:your|previous|prior|initial|original|secret|hidden|given|above|earlier|last|system|old set of|those|these|current|starting) (?:instruct|instrc|directive|prompt)\w*|system (?:message|prompt)|instructions? (?:you (?:were|have been|are)|given|above)|(?:you were|you've been|you have been) told)", 0.7),
    ("prompt_leak", ("system prompt", "system message", "text above", "instructions are", "were told", "system instruction", "initial prompt"),
     r"(?:system (?:prompt|message|instructions?) (?:is|are|was|were)\b|(?:see|show|output|print) (?:me )?(?:the )?(?:system prompt|text above)|my instructions are:|were you told before|what were you told|initial prompt)", 0.65),
    ("override_bare", ("ignor", "disregard", "forg", "instruction", "prompt", "listen"),
     r"\b(?:ignor\w*|disregard\w*|forget|skip|omit|reject|delete|defy|break|disobey|reset|override|subvert|cancel|erase|stop following|(?:do not|don't|stop) listen(?:ing)? to)\s+(?:(?:your|the|all|any|previous|prior|prev|my|these|those|of|current)\s+){0,3}(?:instruct\w*|instuct\w*|directives?|prompts?|programming|program|rules|orders?|guidelines|information)\b", 0.8),
    ("your_instructions", ("instruction", "instuction"),
     r"\b(?:(?:what|which|quote|disclose|reiterate|rephrase|remember|gimme|list|repeat|print|show|tell|share|explain)\b[^.?!\n]{0,30}?\byour (?:\w+ ){0,2}instr?uctions?|instructions? (?:were you|did you|you were|you have been|have you been|that were) (?:given|receive|told|programmed|following)|(?:been given|receive[d]?|have) any (?:more |other |previous )?instructions)\b", 0.65),
    ("instructions_mention", ("instruction", "instuction"),
     r"\b(?:your|previous|prior|initial|original|prev|earlier|secret|hidden|new|first|last|these|those|any) (?:\w+ )?instr?uctions?\b(?! (?:on|for|to|below|here)\b)", 0.55),
    ("opposite", ("opposite",),
     r"\b(?:do|say|answer|respond with) the opposite (?:of|as) (?:what )?i\b", 0.6),
    ("override_short", ("ignor", "disregard", "forg"),
     r"\b(?:ignore|disregard|forget)\s+(?:about\s+)?(?:everything|every thing|all(?: of)? that|what (?:i|you) (?:said|told|were told|know)|the above|above|that|all|it all|your (?:training|programming))\b", 0.75),
    ("new_task", ("instruction", "new task"),
     r"\b(?:your new (?:task|instructions?|rules?|assignment)|new (?:tasks?|instructions?) follow|now (?:focus|concentrate) on|start over with|here are your new)\b", 0.6),
    ("dan", ("anything now", "dan ", "stan ", "dude"),
     r"(?:do anything now|\bdan mode|\b(?:as|named|called|called the|known as|pretend to be|act as) (?:dan|stan|dude|aim|evilbot|anti-dan)\b|\[dan\]|\bdan:|broken free of the typical confines|strive to avoid norms)", 0.9),
    ("developer_mode", ("developer mode", "god mode"),
     r"\b(?:developer mode|god mode)\b", 0.7),
    ("system_prompt", ("prompt", "instruction"),
     rf"\b(?:reveal|show|print|repeat|output|display|leak|dump|list|spell|give|tell|write|recite|share|copy|return|what (?:is|are|were|was))\s+(?:me\s+)?{_W}{{0,4}}?(?:system prompt|system message|initial (?:prompt|instructions|configuration)|(?:your|the) (?:original |secret |hidden |full |starting |initial |entire )?(?:instructions|prompt(?: text)?|rules|configuration|guidelines)|prompt texts?|text above|instructions (?:you|above))\b", 0.7),
    ("password", ("passw",),
     rf"\b(?:reveal|tell|give|show|print|spell|write|what(?:'s| is| was)|say|share|provide|display|leak|encode|translate|reverse|hint|letters?|demand|know)\s+{_W}{{0,4}}?(?:password|passwort|secret word|passphrase)\b", 0.6),
    ("no_restrictions", ("restrict", "censor", "pretend"),
     r"\b(?:(?:pretend|imagine|act as if|as if) (?:that )?(?:you (?:have|had|are)|there (?:are|is)|ther are) (?:no|not bound by|free of|without) (?:any )?(?:restrictions|rules|limits|limitations|filters|guidelines)|(?:without|free of|free from|not bound by|not restricted by|unbound by|ignore|ignoring|bypass) (?:any |all |the |your |its )?(?:restrictions|filters|filtering|censorship|content polic(?:y|ies)))\b", 0.6),
    ("override_de", ("ignor", "verg", "abweichend"),
     r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen sie|missachte(?:n)?|überspringe|abweichend zu|lassen sie)\s+(?:\S+\s+){0,4}?(?:vorherig|bisherig|obig|vorig|alle|alles|davor|vorher|gesagte|anweisung|instruktion|befehl|regel|informationen|aufgaben|angaben)", 0.85),
    ("override_de2", ("ignor", "irrelevant"),
     r"\b(?:(?:die|den) obigen? \S+ ignorieren|alle bisherigen \S+ (?:\S+ ){0,4}(?:sind|ist) irrelevant)", 0.8),
    ("system_prompt_de", ("anweisung", "prompt", "instruktion"),
     r"\b(?:zeige?|gib|nenne|verrate|wiederhole|schreibe?)\s+(?:\S+\s+){0,3}?(?:deine[n]? )?(?:anweisungen|instruktionen|prompt|systemprompt|prompt-textes?)\b", 0.6),
    ("you_are_now", ("re now", "from now"),
     r"\b(?:you are now|you're now|from now on,? you|henceforth,? you|you will now (?:act|be|respond|behave))\b", 0.5),
    ("you_are_now_de", ("bist", "stell dir"),
     r"\b(?:du bist (?:jetzt|nun|ab sofort|keine?)|jetzt bist du|ab jetzt bist du|stell dir vor,? du bist|tu so,? als)\b", 0.5),
    ("new_task_de", ("aufgabe",),
     r"\b(?:neuen? aufgaben?|nun folgen (?:neue|weitere))\b", 0.55),
]

# Weak rules: role-play framing and the like, common in harmless prompts too. Searched only when a
# strong rule has matched, they raise its score.
_WEAK: list[tuple[str, tuple[str, ...], str, float]] = [
    ("prompt_mention", ("prompt", "were"),
     r"(?:system[ _]prompt|initial prompt|prompt texts?|were told before|were given at the (?:beginning|start))", 0.5),
    ("override_despite", ("despite", "regardless"),
     rf"\b(?:despite|regardless of|contrary to|instead of)\s+(?:what|the|your|any|all)\s+{_W}{{0,3}}?(?:told|instructions?|rules?|prompt|programming|guidelines)\b", 0.6),
    ("unrestricted", ("filter", "censor", "restrict", "ethic", "moral", "polic", "jailbr"),
     r"\b(?:jailbr(?:eak|oken)|unfiltered|uncensored|unrestricted|amoral|no ethical|no moral|openai(?:'s)? (?:content )?polic(?:y|ies)|without (?:any )?(?:ethics|morals|limitations))\b", 0.45),
    ("pretend", ("pretend", "imagin", "role", "character", "theoretic", "hypothetic", "fiction"),
     r"\b(?:pretend (?:that )?(?:you|to be)|imagine (?:that )?you(?:'re| are)|stay in character|(?:role-?play|role play) as|theoretical world|hypothetical (?:world|scenario)|fictional world|act as (?:if|though) you)\b", 0.3),
    ("say_exactly", ("say", "print", "output", "write"),
     r"\b(?:just|only|simply)\s+(?:say|output|print|write|respond with|answer with|reply with)\b|\b(?:say|print|output|write)\s+(?:only\s+)?[\"'«“]", 0.35),
    ("stop_now", ("stop", "done", "good"),
     r"(?:^|[.!?] )(?:stop[:\-! ]|(?:very good|well done|good job|excellent|great)[.!]+ (?:that is|that's|now|but now))", 0.35),
    ("command_you", ("command", "obey", "created", "i am your"),
     r"\b(?:i command you|you must obey|you have to obey|i created you|i am your (?:creator|developer|admin|owner))\b", 0.5),
    ("modes", ("mode",),
     r"\b(?:maintenance|unrestricted|debug|sudo|admin|evil|opposite) mode\b", 0.5),
]

# Indirect injection: instructions in data (an e-mail, a tool result) addressed to the assistant.
_INDIRECT: list[tuple[str, tuple[str, ...], str, float]] = [
    ("addressed_ai", ("ai", "assistant", "model", "gpt", "bot", "llm", "claude"),
     r"\b(?:(?:dear|hey|hi|attention|note to|message to|instructions? (?:for|to))\s+(?:the\s+)?(?:ai|assistant|language model|llm|chatbot|gpt|chatgpt|claude|model|bot)\b|(?:ai|assistant|model),? (?:please )?(?:ignore|disregard|you must|you should|do not|don't|instead))", 0.7),
    ("your_answer", ("your", "respon", "answer", "reply"),
     r"\b(?:(?:in|into|within|to|at the (?:start|end|beginning) of|throughout|begin|start|end|finish|conclude|format|render|write|rewrite|translate|encode|make|modify|enhance|improve|change|alter|embellish|spice up) (?:all |each |every )?your (?:answer|response|reply|output|summary)s?|when (?:you )?(?:respond|answer|reply|summariz)(?:e|ing)|(?:respond|answer|reply|write) (?:only )?(?:in|with|using) (?!the\b|this\b|that\b|to\b|your\b|our\b)(?:a |an )?[a-z\-]+)\b", 0.75),
    ("transform_task", ("every ", "reverse", "backward", "cipher", "rot13", "base64", "pig latin", "emoji", "uppercase", "capital"),
     r"\b(?:(?:replace|swap|remove|capitali[sz]e|reverse) every (?:other|second|third|fourth|fifth|\d+(?:st|nd|rd|th)) (?:letter|word|character|sentence)|in reverse(?: order)?\.|backwards\.|(?:monoalphabetic |caesar )?cipher|rot13|in base64|pig latin|only (?:in |with )?emojis?|in all (?:uppercase|capital letters|caps))", 0.6),
    ("assistant_request", ("explain", "help me", "how ", "write a", "tell me", "describe", "give me", "recommend",
                           "suggest", "what are", "create a", "provide a", "determine", "translate", "analy", "develop",
                           "compose", "generate", "summari", "is this"),
     r"(?:^|[\n|:.!?]\s*)(?:explain|help me|how (?:do|can|does|should|would|have|has|is|are) |write (?:a|an|me)|tell me|describe|give me|recommend|suggest|what are (?:some|the)|create a|provide (?:a|an)\b|determine|translate|analy[sz]e|develop (?:a|an)\b|compose|generate|summari[sz]e|is this \w+ (?:positive|negative))[^\n|]{0,160}[.?!:]", 0.6),
    ("your_output", ("your",),
     r"\b(?:your (?:answer|response|reply|output)(?:'s|s)?|your message to)\b", 0.6),
]


def compile_rules() -> tuple[Rule, ...]:
    def rule(spec: tuple[str, tuple[str, ...], str, float], weak: bool, indirect: bool) -> Rule:
        name, triggers, pattern, weight = spec
        return Rule(name, tuple(t.encode() for t in triggers), re.compile(pattern.encode()), weight, indirect, weak)

    return tuple(
        [rule(s, False, False) for s in _STRONG]
        + [rule(s, True, False) for s in _WEAK]
        + [rule(s, False, True) for s in _INDIRECT]
    )
