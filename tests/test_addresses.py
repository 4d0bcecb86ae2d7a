"""The fast path of address checking (newsletter/addresses.py: _plain) takes exactly what email-validator
takes, as it stores it: proven on generated addresses of its shape and on the edges of that shape."""
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from newsletter.addresses import (MAX_ADDRESS, PLAIN, InvalidAddress, _plain, _refused_domain, _validated,
                                  normalize_address)

EDGES = ["a..b@exemple.fr", ".a@exemple.fr", "a.@exemple.fr", "a@-exemple.fr", "a@exemple-.fr", "a@exemple.f",
         "a@exemple.123", "a@xn--bcher-kva.fr", "a@ab--cd.fr", "a@ex\u212ample.fr", "a@EXEMPLE.FR",
         "A.B+c@Sous.Exemple.Fr",
         "a@exemple..fr", "a@.exemple.fr", "a@exemple.fr.", "x" * 64 + "@exemple.fr", "x" * 65 + "@exemple.fr",
         "a@" + "d" * 63 + ".fr", "a@" + "d" * 64 + ".fr", "a@1.fr", "!#$%&'*+/=^_`{|}~-?@exemple.fr",
         "a@exemple.fr\u0301", "é@exemple.fr", "a@é.fr", "a@exemple.xn--p1ai"]


def agree(text: str) -> None:
    """Where the fast path answers, email-validator gives the same (local part, domain)."""
    fast = _plain(text)
    if fast is None:
        return
    assert _validated(text) == fast, text


@settings(max_examples=400, deadline=None)
@given(st.from_regex(PLAIN, fullmatch=True), st.booleans())
def test_the_fast_path_takes_what_email_validator_takes(address, upper):
    local, _, domain = address.rpartition("@")
    text = f"{local}@{domain.upper() if upper else domain}"
    assume(len(text) <= MAX_ADDRESS and not _refused_domain(domain))  # normalize_address refuses those first
    assert _plain(text) is not None or len(local) > 64 or "--" in domain
    agree(text)


@pytest.mark.parametrize("text", EDGES)
def test_at_the_edges_of_its_shape_the_fast_path_agrees_or_steps_aside(text):
    try:
        agree(text)
    except InvalidAddress as refusal:  # email-validator refuses what the fast path took: a defect
        pytest.fail(f"{text!r}: the fast path took it, email-validator says {refusal.message}")


def test_the_usual_addresses_take_the_fast_path():
    for text in ["prenom.nom@exemple.fr", "Lecteur+blog@Orange.FR", "o'brien@sous.domaine.exemple.fr"]:
        assert _plain(text) == (text.rpartition("@")[0], text.rpartition("@")[2].lower())
        assert normalize_address(text) == text.rpartition("@")[0] + "@" + text.rpartition("@")[2].lower()
