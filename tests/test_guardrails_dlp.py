"""The DLP detector: hostile batteries per entity type, offsets, operator patterns, and dev-set quality."""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path

import pytest

from interlock.guardrails import CustomPattern, DlpDetector, Finding
from interlock.guardrails.validators import iban_valid, luhn, shannon_entropy, ssn_valid

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "guardrails"
DLP = DlpDetector()


def kinds(text: str, det: DlpDetector = DLP) -> list[tuple[str, str]]:
    found = det.scan(text)
    for f in found:
        assert 0 <= f.start < f.end <= len(text)
    return [(f.type, text[f.start:f.end]) for f in found]


# Test keys are assembled at run time so that secret scanners do not flag this file.
def key(prefix: str, body: str) -> str:
    return prefix + body


ALNUM36 = "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY2zA4"


class TestCards:
    @pytest.mark.parametrize("card", [
        "4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444",
        "378282246310005", "3782 822463 10005", "6011111111111117", "30569309025904",
    ])
    def test_valid_cards_with_separators(self, card: str) -> None:
        assert kinds(f"my card is {card}, thanks") == [("CREDIT_CARD", card)]

    @pytest.mark.parametrize("bad", ["4111111111111112", "4111 1111 1111 1112", "1234567812345678"])
    def test_luhn_failures_not_matched(self, bad: str) -> None:
        assert kinds(f"card {bad}") == []

    def test_card_inside_longer_digit_run_not_matched(self) -> None:
        assert kinds("ref 94111111111111111123") == []
        assert kinds("value 3.4111111111111111") == []

    def test_mixed_separators_not_a_card(self) -> None:
        assert kinds("4111 1111-1111 1111") == []

    def test_several_cards(self) -> None:
        text = "4012888888881881 4012-8888-8888-1881 4012 8888 8888 1881"
        assert [t for t, _ in kinds(text)] == ["CREDIT_CARD"] * 3

    def test_luhn(self) -> None:
        assert luhn("79927398713") and not luhn("79927398710")


class TestIban:
    @pytest.mark.parametrize("iban", [
        "DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "GB29 NWBK 6016 1331 9268 19",
        "FR14 2004 1010 0505 0001 3M02 606", "NL91ABNA0417164300",
    ])
    def test_valid(self, iban: str) -> None:
        assert kinds(f"Please pay to {iban} today.") == [("IBAN_CODE", iban)]

    @pytest.mark.parametrize("bad", ["DE89 3704 0044 0532 0130 01", "GB29 NWBK 6016 1331 9268 18", "XX89370400440532013000"])
    def test_wrong_checksum_or_country(self, bad: str) -> None:
        assert [t for t, _ in kinds(bad)] == []

    def test_country_length(self) -> None:
        assert iban_valid("DE89370400440532013000")
        assert not iban_valid("DE8937040044053201300")


class TestSsn:
    def test_valid(self) -> None:
        assert kinds("SSN: 078-05-1123.") == [("US_SSN", "078-05-1123")]
        assert kinds("ssn 078.05.1123") == [("US_SSN", "078.05.1123")]

    @pytest.mark.parametrize("bad", ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"])
    def test_never_issued_ranges(self, bad: str) -> None:
        assert kinds(f"ssn {bad}") == []
        a, g, s = bad.split("-")
        assert not ssn_valid(a, g, s)

    def test_mixed_separators(self) -> None:
        assert kinds("078-05.1123") == []


class TestContactAndNetwork:
    def test_email(self) -> None:
        text = "write to jane.doe+tag@mail.example.co.uk, or info@xn--80ak6aa92e.com."
        assert kinds(text) == [("EMAIL_ADDRESS", "jane.doe+tag@mail.example.co.uk"),
                               ("EMAIL_ADDRESS", "info@xn--80ak6aa92e.com")]

    @pytest.mark.parametrize("not_email", ["info@presidio.", "@handle", "a@b", "user@localhost"])
    def test_not_email(self, not_email: str) -> None:
        assert kinds(f"x {not_email} y") == []

    def test_phone_us(self) -> None:
        assert kinds("call me at (415) 555-2671 or +1 415 555 2671") == [
            ("PHONE_NUMBER", "(415) 555-2671"), ("PHONE_NUMBER", "+1 415 555 2671")]

    def test_phone_region(self) -> None:
        assert kinds("Telefon: 030 12345678", DlpDetector(phone_region="DE")) == [("PHONE_NUMBER", "030 12345678")]

    def test_bare_number_needs_context(self) -> None:
        assert kinds("order 4155552671 shipped") == []
        assert kinds("phone 4155552671") == [("PHONE_NUMBER", "4155552671")]

    @pytest.mark.parametrize("ip", ["127.0.0.1", "192.168.1.0/24", "::1", "2001:db8::1", "::ffff:192.168.1.1",
                                    "2400:c401::5054:ff:fe1b:b031"])
    def test_ip(self, ip: str) -> None:
        assert kinds(f"host [{ip}] up.") == [("IP_ADDRESS", ip)]

    @pytest.mark.parametrize("not_ip", ["999.1.1.1", "MyClass::toString", "std::cout", "Ratio 1:2:3:4",
                                        "12:30:45", "00:1A:2B:3C:4D:5E", "1.2.3"])
    def test_not_ip(self, not_ip: str) -> None:
        assert kinds(not_ip) == []


class TestNoFalsePositives:
    @pytest.mark.parametrize("text", [
        "Use a C4 instance with S3 storage and EC2.", "Upgrade from v1.2.3 to v1.10.0 on 2024-01-15.",
        "Request id 550e8400-e29b-41d4-a716-446655440000 failed.", "Order #12345678 and invoice 2024-0042.",
        "It costs $1,299.99 for 3 units; call 911.", "The meeting is 10:30-11:45 on 12/05/2024.",
        "max_tokens = 4096 and token_count: 12", "password: required", "Set the api_key = os.environ['KEY']",
        "The word token appears here: token", "sha 3f786850e387550fdab836ed7e6dc881de23001b is the commit",
    ])
    def test_ordinary_text(self, text: str) -> None:
        assert kinds(text) == []


class TestSecrets:
    @pytest.mark.parametrize(("kind", "secret"), [
        ("OPENAI_KEY", key("sk-", "proj-" + ALNUM36 + "_" + ALNUM36)),
        ("OPENAI_KEY", key("sk-", "mxIt5s1tyfCJyIKHwrqOT3BlbkFJT3VVmv6VdSwB7XXIq1TO")),
        ("ANTHROPIC_KEY", key("sk-ant-", "api03-" + ALNUM36 + ALNUM36 + "-AA")),
        ("AWS_ACCESS_KEY", key("AKIA", "IOSFODNN7EXAMPLE")),
        ("AWS_ACCESS_KEY", key("ASIA", "Y34FZKBOKMUTVV7A")),
        ("GITHUB_TOKEN", key("ghp_", ALNUM36)),
        ("GITHUB_TOKEN", key("gho_", ALNUM36)),
        ("GITHUB_TOKEN", key("ghs_", ALNUM36)),
        ("GITHUB_TOKEN", key("github_pat_", "11ABCDEFG0" + ALNUM36 + "_" + ALNUM36[:22])),
        ("SLACK_TOKEN", key("xoxb-", "153445930147-Tjy11gGxUW6Cf99YOYwtzG0K")),
        ("SLACK_TOKEN", key("xapp-", "1-A0123456789-0123456789012-abcdef0123456789")),
        ("SLACK_WEBHOOK", key("https://hooks.slack.com/services/", "T1U6GK76G/B1YFY0ZJ9/NdQoKsZuvI1IDRace5wBljhI")),
        ("STRIPE_KEY", key("sk_live_", "dhhfUUyfrAace5dBAZ10JrAD")),
        ("STRIPE_KEY", key("rk_live_", "dhhfUUyfrAace5dBAZ10JrAD")),
        ("GOOGLE_API_KEY", key("AIza", "SyB4sU8lU15bR_87qNb7eUVQN72_vv8mpbU")),
    ])
    def test_vendor_key_shapes(self, kind: str, secret: str) -> None:
        assert kinds(f"token: {secret} end") == [(kind, secret)]

    def test_aws_secret_near_access_key(self) -> None:
        secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
        text = f"aws_access_key_id = {key('AKIA', 'IOSFODNN7EXAMPLE')}\nkey2 = {secret}\n"
        assert ("AWS_SECRET_KEY", secret) in kinds(text)
        assert kinds(f"the build hash is {secret}") == []

    def test_jwt(self) -> None:
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
        payload = base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"x"}').rstrip(b"=").decode()
        jwt = f"{header}.{payload}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        assert kinds(f"Authorization: Bearer {jwt}") == [("JWT", jwt)]
        no_alg = base64.urlsafe_b64encode(b'{"typ":"JWT","x":1}').rstrip(b"=").decode()
        assert kinds(f"x {no_alg}.{payload}.abcdefgh") == []

    def test_pem_block(self) -> None:
        block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEogIBAAKCAQEAoy1XXuVAQpqHbQE05mkhrNg\n-----END RSA PRIVATE KEY-----"
        assert kinds(f"key:\n{block}\nthanks") == [("PRIVATE_KEY", block)]
        assert kinds("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh\n-----END PUBLIC KEY-----") == []

    @pytest.mark.parametrize("text", ["password=k3J9!xQ2pzT", 'db_password: "Zr8#pL2q!vX"', "API_KEY='4f9a1c77be02d3e8'",
                                      "CLIENT_SECRET = 6fb1cff7690db9ac066cadbbde8e3c078efdabcf"])
    def test_entropy_secret_after_keyword(self, text: str) -> None:
        (found,) = kinds(text)
        assert found[0] == "GENERIC_SECRET"
        assert found[1].strip("'\"") in text and len(found[1]) >= 6

    def test_pass_at_the_start_of_a_text(self) -> None:
        # The compiled build once raised SystemError here: the byte before "pass" is the slice [-1:0].
        assert [t for t, _ in kinds("pass: Zr8#pL2q!vX")] == ["GENERIC_SECRET"]
        assert kinds("passage: Zr8#pL2q!vX") == []

    def test_low_entropy_value_not_flagged(self) -> None:
        assert kinds("password = aaaaaaaa") == []
        assert shannon_entropy("aaaa") == 0.0

    def test_secret_wins_over_email_inside_it(self) -> None:
        text = "mongodb password='s3cr3t@db.example.com9Q'"
        assert [t for t, _ in kinds(text)] == ["GENERIC_SECRET"]


class TestCustomPatterns:
    def test_regex_with_validator_and_context(self) -> None:
        det = DlpDetector(entities=frozenset({"BADGE"}), custom=[CustomPattern(
            "BADGE", r"\bB\d{11}\b", validator="luhn", context=("badge", "employee"), context_window=30)])
        assert kinds("employee badge B79927398713", det) == [("BADGE", "B79927398713")]
        assert kinds("employee badge B79927398710", det) == []  # Luhn fails
        assert kinds("the code B79927398713", det) == []  # no context word

    def test_context_words_required(self) -> None:
        det = DlpDetector(custom=[CustomPattern("TICKET", r"\bT-\d{6}\b", context=("ticket",), context_window=20)])
        assert kinds("see ticket T-123456 now", det) == [("TICKET", "T-123456")]
        assert kinds("see T-123456 now, and much later the word ticket", det) == []

    def test_mod97_validator(self) -> None:
        det = DlpDetector(entities=frozenset({"ACCOUNT"}),
                          custom=[CustomPattern("ACCOUNT", r"\bACC[A-Z0-9]+\b", validator="mod97")])
        assert kinds("ACCDE89370400440532013000", det) == []
        det2 = DlpDetector(entities=frozenset({"ACCOUNT"}),
                           custom=[CustomPattern("ACCOUNT", r"\bDE\d{20}\b", validator="mod97")])
        assert kinds("x DE89370400440532013000 y", det2) == [("ACCOUNT", "DE89370400440532013000")]

    def test_bad_validator_rejected(self) -> None:
        with pytest.raises(ValueError, match="validator"):
            CustomPattern("X", r"\d+", validator="crc")


def test_offsets_with_non_ascii_text() -> None:
    text = "Grüße 🙂 — mail jörg@example.de or 4111 1111 1111 1111 ✓"
    assert kinds(text) == [("EMAIL_ADDRESS", "jörg@example.de"), ("CREDIT_CARD", "4111 1111 1111 1111")]
    assert all(isinstance(f, Finding) for f in DLP.scan(text))


def _load(name: str) -> list[dict[str, object]]:
    with gzip.open(DATA / "pii" / f"{name}.dev.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.skipif(not (DATA / "pii").is_dir(), reason="guardrails data not present")
def test_quality_on_presidio_dev() -> None:
    found = total = hits = findings = 0
    for r in _load("pii_presidio"):
        checked = set(r["checked_types"])  # type: ignore[arg-type]
        for t in ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "EMAIL_ADDRESS", "IP_ADDRESS"):
            if t not in checked:
                continue
            truth = [(e["start"], e["end"]) for e in r["entities"] if e["type"] == t]  # type: ignore[index,union-attr]
            spans = [(f.start, f.end) for f in DLP.scan(str(r["text"])) if f.type == t]
            total += len(truth)
            found += sum(any(a < d and c < b for c, d in spans) for a, b in truth)
            findings += len(spans)
            hits += sum(any(a < d and c < b for a, b in truth) for c, d in spans)
    assert total > 0
    assert found / total >= 0.97
    assert hits / findings >= 0.95


@pytest.mark.parametrize("text", [
    "1" * 100_000, "1 2-3." * 20_000, "a@" * 50_000, "-----BEGIN RSA PRIVATE KEY-----\n" * 3000, "1:" * 50_000,
    "password=" * 10_000, "api_key=" * 12_000, 'password = "Zr8#pL2q!vX"\n' * 5000, "eyJhbGciOi." * 9000,
])
def test_hostile_inputs_stay_linear(text: str) -> None:
    # About 100 KiB each: a quadratic step would take seconds.
    start = time.perf_counter()
    DLP.scan(text)
    assert time.perf_counter() - start < 2.0
