"""Signed links, property-tested: any address round-trips; tampered tokens are
BadLink; old confirmation tokens are ExpiredLink; rotation keeps old links valid."""
import string

import pytest
from hypothesis import assume, given, settings, strategies as st

from newsletter.config import Config
from newsletter.links import confirm_url, list_unsubscribe_headers, unsubscribe_mailto, unsubscribe_url
from newsletter.signing import CONFIRM_MAX_AGE, BadLink, ExpiredLink, Signer

OLD, NEW, OTHER = "ancien-secret-" + "a" * 20, "nouveau-secret-" + "b" * 20, "inconnu-" + "c" * 20

addresses = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(alphabet=string.ascii_letters + string.digits + "+._-é", min_size=1, max_size=40),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=30),
    st.sampled_from(["fr", "com", "xn--p1ai", "museum"]),
)


@given(addresses)
def test_round_trip(email):
    signer = Signer([NEW])
    assert signer.read_confirm_token(signer.confirm_token(email)) == email
    assert signer.read_unsubscribe_token(signer.unsubscribe_token(email)) == email


@given(addresses, st.data())
def test_any_change_to_a_token_is_a_bad_link(email, data):
    # A fixed clock: a token's length follows its timestamp, and Hypothesis replays a case expecting the
    # same draws (a second ticking over between two runs of a case failed it as flaky).
    signer = Signer([NEW], clock=lambda: 1_800_000_000)
    for make, read in ((signer.confirm_token, signer.read_confirm_token),
                       (signer.unsubscribe_token, signer.read_unsubscribe_token)):
        token = make(email)
        i = data.draw(st.integers(0, len(token) - 1), label="position")
        # The last base64 character of a segment may carry unused bits, which decoders ignore.
        assume(token[i] != "." and i + 1 < len(token) and token[i + 1] != ".")
        alphabet = string.ascii_letters + string.digits + "-_."
        replacement = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[i]), label="char")
        tampered = token[:i] + replacement + token[i + 1:]
        with pytest.raises(BadLink) as info:
            read(tampered)
        assert type(info.value) is BadLink


@given(st.text(max_size=200))
def test_garbage_is_a_bad_link(garbage):
    signer = Signer([NEW])
    with pytest.raises(BadLink):
        signer.read_confirm_token(garbage)
    with pytest.raises(BadLink):
        signer.read_unsubscribe_token(garbage)


@given(addresses)
def test_links_are_not_interchangeable(email):
    signer = Signer([NEW])
    with pytest.raises(BadLink):
        signer.read_unsubscribe_token(signer.confirm_token(email))
    with pytest.raises(BadLink):
        signer.read_confirm_token(signer.unsubscribe_token(email))


@settings(max_examples=50)
@given(addresses, st.integers(CONFIRM_MAX_AGE + 1, 10 * 365 * 86400))
def test_confirmation_expires_after_48_hours(email, age):
    import time
    now = time.time()
    token = Signer([NEW], clock=lambda: now - age).confirm_token(email)
    with pytest.raises(ExpiredLink):
        Signer([NEW]).read_confirm_token(token)
    # …but the signature itself is genuine: a longer max_age still reads it.
    assert Signer([NEW]).read_confirm_token(token, max_age=age + 3600) == email


@settings(max_examples=50)
@given(addresses, st.integers(0, CONFIRM_MAX_AGE - 60))
def test_confirmation_is_valid_within_48_hours(email, age):
    import time
    now = time.time()
    token = Signer([NEW], clock=lambda: now - age).confirm_token(email)
    assert Signer([NEW]).read_confirm_token(token) == email


@settings(max_examples=50)
@given(addresses, st.integers(CONFIRM_MAX_AGE + 1, 20 * 365 * 86400))
def test_unsubscribe_never_expires(email, age):
    import time
    now = time.time()
    token = Signer([NEW], clock=lambda: now - age).unsubscribe_token(email)
    assert Signer([NEW]).read_unsubscribe_token(token) == email


@given(addresses)
def test_rotation_accepts_the_previous_secret_and_signs_with_the_new(email):
    before, after = Signer([OLD]), Signer([NEW, OLD])
    assert after.read_confirm_token(before.confirm_token(email)) == email
    assert after.read_unsubscribe_token(before.unsubscribe_token(email)) == email
    # New tokens use the new secret: readable without the old one, not by the old signer.
    fresh = after.unsubscribe_token(email)
    assert Signer([NEW]).read_unsubscribe_token(fresh) == email
    with pytest.raises(BadLink):
        before.read_unsubscribe_token(fresh)


@given(addresses)
def test_unknown_secret_is_rejected(email):
    with pytest.raises(BadLink):
        Signer([NEW, OLD]).read_confirm_token(Signer([OTHER]).confirm_token(email))
    with pytest.raises(BadLink):
        Signer([NEW, OLD]).read_unsubscribe_token(Signer([OTHER]).unsubscribe_token(email))


def test_links_are_absolute_and_carry_the_tokens():
    config = Config(public_url="https://blog.exemple.fr", newsletter_url="https://blog.exemple.fr/newsletter",
                    mail_from="égoBlog <lettre@blog.exemple.fr>", reply_to="Francois <francois@blog.exemple.fr>",
                    site_name="égoBlog", db=":memory:", outbox=None, secrets=[NEW])
    signer = Signer(config.secrets)
    email = "lecteur+lettre@exemple.fr"
    c = confirm_url(config, signer, email)
    u = unsubscribe_url(config, signer, email)
    assert c.startswith("https://blog.exemple.fr/newsletter/confirmer/")
    assert signer.read_confirm_token(c.rsplit("/", 1)[1]) == email
    assert u.startswith("https://blog.exemple.fr/newsletter/desinscription/")
    assert signer.read_unsubscribe_token(u.rsplit("/", 1)[1]) == email
    m = unsubscribe_mailto(config, signer, email)
    assert m.startswith("mailto:francois@blog.exemple.fr?subject=unsubscribe-")
    assert signer.read_unsubscribe_token(m.split("unsubscribe-", 1)[1]) == email
    headers = list_unsubscribe_headers(config, signer, email)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://") and "<mailto:" in headers["List-Unsubscribe"]


@settings(max_examples=50)
@given(st.lists(addresses, min_size=1, max_size=5), st.integers(1_600_000_000, 2_000_000_000))
def test_tokens_are_plain_itsdangerous_tokens(emails, now):
    """Tokens made without itsdangerous's objects (Signer._mint, and a reader's unsubscribe token made
    once per mail) are its very bytes: links mailed before stay valid, and another itsdangerous program
    reads ours. Except where itsdangerous compresses (an address zlib shortens): ours is the same token
    uncompressed, which itsdangerous reads as well."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class At(TimestampSigner):
        def get_timestamp(self):
            return now

    ours = Signer([NEW, OLD], clock=lambda: now)
    plain = {salt: URLSafeTimedSerializer([OLD, NEW], salt=salt, signer=At)
             for salt in ("newsletter.confirm", "newsletter.unsubscribe")}
    def same(token: str, serializer, payload) -> bool:
        theirs = serializer.dumps(payload)
        if theirs.startswith("."):  # compressed by itsdangerous
            return serializer.loads(token) == payload and not token.startswith(".")
        return token == theirs

    for email in emails + emails[::-1]:  # the same address again, after others
        assert same(ours.unsubscribe_token(email), plain["newsletter.unsubscribe"], email)
        assert same(ours.confirm_token(email), plain["newsletter.confirm"], email)
        assert same(ours.confirm_token(email, ["crm", "social"]), plain["newsletter.confirm"], [email, ["crm", "social"]])
        assert ours.read_unsubscribe_token(plain["newsletter.unsubscribe"].dumps(email)) == email


def test_a_token_itsdangerous_would_compress_is_made_uncompressed_and_read_by_both():
    """An address that repeats itself: itsdangerous would compress its token; ours is not compressed, and
    both our reading and itsdangerous's give the address back (old compressed tokens still read too)."""
    email = "a" * 40 + "@exemple.fr"
    signer = Signer([NEW])
    assert signer._unsubscribe.dumps(email).startswith(".")  # what itsdangerous itself makes
    for token in (signer.unsubscribe_token(email), signer._unsubscribe.dumps(email)):
        assert signer.read_unsubscribe_token(token) == email
        assert signer._unsubscribe.loads(token) == email
    assert not signer.unsubscribe_token(email).startswith(".")
    assert signer.read_confirm(signer.confirm_token(email, ["crm"])) == (email, ["crm"])
    assert signer.read_confirm(signer._confirm.dumps([email, ["crm"]])) == (email, ["crm"])


@settings(max_examples=200)
@given(addresses, st.integers(-10, 3 * CONFIRM_MAX_AGE), st.data())
def test_the_quick_reading_accepts_only_what_itsdangerous_accepts_and_gives_the_same(email, age, data):
    """Links are read by Signer._genuine first, without itsdangerous's objects: whatever the token (fresh,
    old, from the future, altered, signed with a secret we do not have, with lists), it either gives what
    itsdangerous gives or declines, and itsdangerous then decides; a fresh genuine token takes the quick way."""
    from itsdangerous import BadData

    made = Signer([data.draw(st.sampled_from([NEW, OLD, OTHER]), label="signed with")], clock=lambda: 1_800_000_000)
    reader = Signer([NEW, OLD], clock=lambda: 1_800_000_000 + age)
    lists = data.draw(st.sampled_from([["crm"], ["crm", "social"], [f"r{n}" for n in range(40)]]), label="lists")
    for token, serializer, keys, max_age in (
            (made.confirm_token(email), reader._confirm, reader._confirm_keys, CONFIRM_MAX_AGE),
            (made.confirm_token(email, lists), reader._confirm, reader._confirm_keys, CONFIRM_MAX_AGE),
            (made.unsubscribe_token(email), reader._unsubscribe, reader._unsubscribe_keys, None)):
        if data.draw(st.booleans(), label="altered"):
            i = data.draw(st.integers(0, len(token) - 1), label="position")
            token = token[:i] + data.draw(st.sampled_from(string.ascii_letters + string.digits + "-_."), label="c") + token[i + 1:]
        quick = reader._genuine(token, keys, max_age)
        try:
            expected = serializer.loads(token, max_age=max_age)
        except BadData:
            assert quick is None
        else:
            assert quick in (None, expected)
            if made._confirm_keys[0].digest() == keys[0].digest() and not token.startswith(".") and age <= CONFIRM_MAX_AGE:
                assert quick == expected  # the quick way, not itsdangerous's
