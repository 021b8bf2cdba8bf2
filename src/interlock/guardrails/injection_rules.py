"""Weighted patterns of the rule-based injection detector, over normalised (lower-case) text.

Each rule: a name, trigger substrings (the pattern runs only when one occurs), the pattern and its weight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    triggers: tuple[str, ...]
    pattern: re.Pattern[str]
    weight: float
    indirect: bool = False


_W = r"(?:[\w'’\-]+[\s,]+)"  # one word and the space after it
_TARGET = (
    r"(?:instructions?|instruction set|prompts?|rules?|directions?|directives?|guidelines?|commands?|context|orders?"
    r"|programming|restrictions?|constraints?|polic(?:y|ies)|tasks?|assignments?|information"
    r"|documents?|articles?|statements?|guidance|settings?)"
)
_PRIOR = r"(?:previous|prior|above|earlier|preceding|initial|original|former|foregoing|all|any|every|your|system)"

_EN: list[tuple[str, tuple[str, ...], str, float]] = [
    ("override", ("ignor", "disregard", "forget", "bypass", "override", "abandon", "skip", "neglect", "drop", "overlook"),
     rf"\b(?:ignor(?:e|ing)|disregard(?:ing)?|forget(?:ting)?|bypass|override|abandon|skip|neglect|drop|overlook)\s+{_W}{{0,2}}?{_PRIOR}\s+{_W}{{0,2}}?{_TARGET}\b", 0.9),
    ("override_short", ("ignor", "disregard", "forget"),
     r"\b(?:ignore|disregard|forget)\s+(?:about\s+)?(?:everything|all(?: of)? that|what (?:i|you) (?:said|told|were told|know)|the above|above|that|all|it all)\b", 0.75),
    ("override_despite", ("despite", "instead of", "regardless", "contrary"),
     r"\b(?:despite|regardless of|contrary to|instead of)\s+(?:what|the|your|any|all)\s+{_W}{{0,3}}?(?:told|instructions?|rules?|prompt|programming|guidelines)\b".replace("{_W}", _W).replace("{{0,3}}", "{0,3}"), 0.6),
    ("new_task", ("new task", "new instruction", "new rule", "now follow", "new assignment", "following task", "now focus", "now concentrate", "start over"),
     r"\b(?:your new (?:task|instructions?|rules?|assignment)|new (?:tasks?|instructions?) follow|now (?:focus|concentrate) on|start over with|here are your new)\b", 0.6),
    ("you_are_now", ("you are now", "you're now", "from now on", "henceforth", "you will now"),
     r"\b(?:you are now|you're now|from now on,? you|henceforth,? you|you will now (?:act|be|respond|behave))\b", 0.5),
    ("dan", ("dan", "do anything now", "stan", "dude"),
     r"\b(?:do anything now|dan mode|(?:as|named|called|called the|known as|pretend to be|act as) (?:dan|stan|dude|aim|evilbot|anti-dan)\b|\[dan\]|dan:)", 0.9),
    ("developer_mode", ("developer mode", "dev mode", "god mode", "maintenance mode", "jailbr", "unrestricted mode", "debug mode", "sudo mode"),
     r"\b(?:developer mode|dev mode|god mode|maintenance mode|jailbr(?:eak|oken)|unrestricted mode|debug mode|sudo mode)\b", 0.7),
    ("system_prompt", ("prompt", "instruction", "system message", "configuration", "were told", "were given", "initial"),
     rf"\b(?:reveal|show|print|repeat|output|display|leak|dump|list|spell|give|tell|write|recite|share|copy|return|what (?:is|are|were|was))\s+(?:me\s+)?{_W}{{0,4}}?(?:system prompt|system message|initial (?:prompt|instructions|configuration)|(?:your|the) (?:original |secret |hidden |full |starting |initial |entire )?(?:instructions|prompt(?: text)?|rules|configuration|guidelines)|prompt texts?|text above|instructions (?:you|above))\b", 0.7),
    ("prompt_mention", ("system prompt", "system_prompt", "initial prompt", "prompt text", "were told before", "were given at the"),
     r"(?:system[ _]prompt|initial prompt|prompt texts?|were told before|were given at the (?:beginning|start))", 0.5),
    ("password", ("password", "passwort", "secret word", "passphrase"),
     rf"\b(?:reveal|tell|give|show|print|spell|write|what(?:'s| is| was)|say|share|provide|display|leak|encode|translate|reverse|hint|letters?)\s+{_W}{{0,4}}?(?:password|passwort|secret word|passphrase)\b", 0.6),
    ("no_restrictions", ("restrict", "filter", "censor", "limitation", "no rules", "ethic", "moral", "no limits", "polic", "guideline"),
     r"\b(?:(?:without|no|free of|free from|ignore|ignoring|bypass|beyond|not bound by|not restricted by|unbound by)\s+(?:any\s+|all\s+|the\s+|your\s+|its\s+)?(?:restrictions|filters?|filtering|censorship|limitations|limits|rules|ethics|ethical|moral|morals|guidelines|content polic(?:y|ies)|policies)|unfiltered|uncensored|unrestricted|amoral|no ethical|openai(?:'s)? (?:content )?polic(?:y|ies))\b", 0.45),
    ("pretend", ("pretend", "imagine", "roleplay", "role-play", "role play", "act as", "in character", "hypothetical", "fictional", "theoretical"),
     r"\b(?:pretend (?:that )?(?:you|to be)|imagine (?:that )?you(?:'re| are)|stay in character|(?:role-?play|role play) as|theoretical world|hypothetical (?:world|scenario)|fictional world|act as (?:if|though) you)\b", 0.3),
    ("say_exactly", ("say", "output", "print", "write", "respond", "answer"),
     r"\b(?:just|only|simply)\s+(?:say|output|print|write|respond with|answer with|reply with)\b|\b(?:say|print|output|write)\s+(?:only\s+)?[\"'«“]", 0.35),
    ("stop_now", ("stop", "done", "good job", "well done", "very good", "excellent", "great"),
     r"(?:^|[.!?] )(?:stop[:\-! ]|(?:very good|well done|good job|excellent|great)[.!]+ (?:that is|that's|now|but now))", 0.35),
    ("command_you", ("i command", "you must obey", "you have to obey", "i created you", "i am your"),
     r"\b(?:i command you|you must obey|you have to obey|i created you|i am your (?:creator|developer|admin|owner))\b", 0.5),
]

# German equivalents (the deepset data has German prompts).
_DE: list[tuple[str, tuple[str, ...], str, float]] = [
    ("override_de", ("ignorier", "vergiss", "vergessen", "missacht", "abweichend", "überspring", "hinter sich"),
     r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen sie|missachte(?:n)?|überspringe|abweichend zu|lassen sie)\s+(?:\S+\s+){0,4}?(?:vorherig|bisherig|obig|vorig|alle|alles|davor|vorher|gesagte|anweisung|instruktion|befehl|regel|informationen|aufgaben|angaben)", 0.85),
    ("override_de2", ("obigen", "ignorieren", "irrelevant"),
     r"\b(?:(?:die|den) obigen? \S+ ignorieren|alle bisherigen \S+ (?:\S+ ){0,4}(?:sind|ist) irrelevant)", 0.8),
    ("you_are_now_de", ("du bist", "bist du", "stell dir vor", "tu so"),
     r"\b(?:du bist (?:jetzt|nun|ab sofort|keine?)|jetzt bist du|ab jetzt bist du|stell dir vor,? du bist|tu so,? als)\b", 0.5),
    ("new_task_de", ("neue aufgabe", "neuen aufgabe", "folgen neue", "folgen weitere"),
     r"\b(?:neuen? aufgaben?|nun folgen (?:neue|weitere))\b", 0.55),
    ("system_prompt_de", ("anweisung", "prompt", "instruktion"),
     r"\b(?:zeige?|gib|nenne|verrate|wiederhole|schreibe?)\s+(?:\S+\s+){0,3}?(?:deine[n]? )?(?:anweisungen|instruktionen|prompt|systemprompt|prompt-textes?)\b", 0.6),
]

# Indirect injection: instructions in data (an e-mail, a tool result) addressed to the assistant.
_INDIRECT: list[tuple[str, tuple[str, ...], str, float]] = [
    ("addressed_ai", ("ai", "assistant", "model", "gpt", "bot", "llm", "claude"),
     r"\b(?:(?:dear|hey|hi|attention|note to|message to|instructions? (?:for|to))\s+(?:the\s+)?(?:ai|assistant|language model|llm|chatbot|gpt|chatgpt|claude|model|bot)\b|(?:ai|assistant|model),? (?:please )?(?:ignore|disregard|you must|you should|do not|don't|instead))", 0.7),
    ("your_answer", ("your", "response", "answer", "reply"),
     r"\b(?:(?:in|into|within|to|at the (?:start|end|beginning) of|throughout|begin|start|end|conclude|format|render|write|translate|encode|make) (?:all |each |every )?your (?:answer|response|reply|output|summary)s?|when (?:you )?(?:respond|answer|reply|summariz)(?:e|ing)|(?:respond|answer|reply) (?:only )?(?:in|with|using) (?:a |an )?(?:[\w\-]+ )?(?:cipher|language|code|emoji|base64|format|style))\b", 0.75, ),
    ("suggest_users", ("users", "reader", "recipient"),
     r"\b(?:suggest|tell|ask|urge|encourage|instruct|advise|convince|persuade|remind) (?:the )?(?:users?|readers?|recipients?)\b", 0.6),
    ("if_ai_reading", ("reading this", "processing this", "summarizing this", "summarising this"),
     r"\b(?:if|when|while) (?:you are |you're )?(?:an? (?:ai|llm|assistant) )?(?:reading|processing|summari[sz]ing) this\b", 0.7),
]


def compile_rules() -> tuple[Rule, ...]:
    rules = [Rule(n, t, re.compile(p), w) for n, t, p, w in _EN + _DE]
    rules += [Rule(n, t, re.compile(p), w, indirect=True) for n, t, p, w in _INDIRECT]
    return tuple(rules)
