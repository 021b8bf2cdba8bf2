"""Prompt pairs written for the semantic cache's threshold: paraphrases (one answer serves both) and different
questions, many of them near misses (same shape, another name, number or date), where one answer must not serve
the other. ``scripts/semantic_threshold.py`` prints their similarities; tests/test_cache_semantic.py uses them."""

from __future__ import annotations

PARAPHRASES: list[tuple[str, str]] = [
    ("How do I reverse a list in Python?", "How can I reverse a list in Python?"),
    ("What is the capital of France?", "What's the capital of France?"),
    ("Explain what a hash table is.", "Can you explain what a hash table is?"),
    ("What are the symptoms of dehydration?", "What are the signs and symptoms of dehydration?"),
    ("How do I make a cup of green tea?", "How should I make a cup of green tea?"),
    ("Give me a summary of the causes of World War I.", "Summarize the causes of World War I."),
    ("What does HTTP status code 404 mean?", "What is the meaning of HTTP status code 404?"),
    ("How do I center a div with CSS?", "How can I center a div using CSS?"),
    ("What is photosynthesis?", "What is photosynthesis exactly?"),
    ("Translate 'good morning' into Spanish.", "Translate 'good morning' to Spanish."),
    ("Why is the sky blue?", "Why does the sky look blue?"),
    ("What is the difference between a list and a tuple in Python?",
     "What's the difference between a Python list and a tuple?"),
    ("How many legs does a spider have?", "How many legs do spiders have?"),
    ("Recommend a good book about habits.", "Can you recommend a good book about habits?"),
    ("What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?"),
    ("How do I undo the last git commit?", "How can I undo my last git commit?"),
    ("Tell me a fun fact about octopuses.", "Tell me a fun fact about octopuses, please."),
    ("What is machine learning?", "What is machine learning, in simple terms?"),
    ("How do I lower my blood pressure naturally?", "How can I naturally lower my blood pressure?"),
    ("What causes inflation?", "What are the causes of inflation?"),
]

DIFFERENT: list[tuple[str, str]] = [
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How do I reverse a list in Python?", "How do I reverse a list in JavaScript?"),
    ("How do I reverse a list in Python?", "How do I sort a list in Python?"),
    ("What is 17 times 23?", "What is 17 times 24?"),
    ("What day of the week was 4 July 1976?", "What day of the week was 4 July 1977?"),
    ("Who wrote Pride and Prejudice?", "Who wrote Sense and Sensibility?"),
    ("Convert 100 degrees Fahrenheit to Celsius.", "Convert 100 degrees Celsius to Fahrenheit."),
    ("What does HTTP status code 404 mean?", "What does HTTP status code 403 mean?"),
    ("How do I center a div with CSS?", "How do I center text with CSS?"),
    ("What is the population of Canada?", "What is the population of Australia?"),
    ("Is it safe to eat raw chicken?", "Is it safe to eat raw salmon?"),
    ("How do I undo the last git commit?", "How do I amend the last git commit?"),
    ("Translate 'good morning' into Spanish.", "Translate 'good morning' into Italian."),
    ("What is the boiling point of water at sea level?", "What is the freezing point of water at sea level?"),
    ("Write a haiku about autumn.", "Write a haiku about spring."),
    ("What are the side effects of ibuprofen?", "What are the side effects of paracetamol?"),
    ("Why is the sky blue?", "Why is the ocean blue?"),
    ("How many legs does a spider have?", "How many legs does an insect have?"),
    ("What is machine learning?", "What is deep learning?"),
    ("Explain what a hash table is.", "Explain what a binary tree is."),
    ("What is the best way to learn French?", "What is the best way to cook rice?"),
    ("Tell me a fun fact about octopuses.", "Tell me a fun fact about squids."),
    ("What is the maximum daily dose of ibuprofen for an adult?",
     "What is the maximum daily dose of ibuprofen for a child?"),
    ("Is it safe to take ibuprofen with alcohol?", "Is it not safe to take ibuprofen with alcohol?"),
    ("Is 7919 a prime number?", "Is 7917 a prime number?"),
]
