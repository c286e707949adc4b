"""Panels, the settings page and action messages in the viewer's Pipedrive language.

The catalogs (extensions/locale/<lang>/LC_MESSAGES/django.po, compiled to .mo) are checked for
completeness here, so a string added to a template without its translations fails the suite; the
source check (``makemessages`` finds no string the catalogs lack) needs GNU gettext's xgettext.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipedrive_app.installations.models import Installation

from .conftest import ADMIN, panel_query

LOCALE_DIR = Path(__file__).resolve().parents[2] / "extensions" / "locale"
LANGUAGES = ("de", "es", "fr", "pt_BR")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _catalog(language: str) -> dict[str, list[str]]:
    """msgid -> its msgstr forms, read from the .po file (with fuzzy entries flagged by a '#, fuzzy' key)."""
    text = (LOCALE_DIR / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    entries: dict[str, list[str]] = {}
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#"):
                if "fuzzy" in line:
                    fields["fuzzy"] = "yes"
                continue
            match = re.match(r'^(msgid_plural|msgid|msgstr\[\d\]|msgstr) (".*")$', line)
            if match:
                key = match.group(1)
                fields[key] = ""
                line = match.group(2)
            fields[key] += eval(line)  # a .po string literal is a C/Python-compatible quoted string
        if fields.get("msgid"):
            assert "fuzzy" not in fields, f"{language}: fuzzy translation of {fields['msgid']!r}"
            entries[fields["msgid"]] = [v for k, v in sorted(fields.items()) if k.startswith("msgstr")]
    return entries


def test_every_string_is_translated_in_every_language() -> None:
    catalogs = {language: _catalog(language) for language in LANGUAGES}
    english = set(catalogs["de"])
    assert len(english) >= 80
    for language, catalog in catalogs.items():
        assert set(catalog) == english, f"{language} differs in its strings"
        for msgid, forms in catalog.items():
            assert forms and all(form.strip() for form in forms), f"{language}: {msgid!r} is not translated"
            wanted = sorted(PLACEHOLDER.findall(msgid))
            if len(forms) == 1:  # a singular entry keeps every placeholder, each as often
                assert sorted(PLACEHOLDER.findall(forms[0])) == wanted, f"{language}: {msgid!r} changes a placeholder"
            else:  # a plural entry's form may leave the count out ("a day ago"), never add one
                for form in forms:
                    assert set(PLACEHOLDER.findall(form)) <= set(wanted), f"{language}: {msgid!r} adds a placeholder"


def test_the_compiled_catalogs_match_their_sources() -> None:
    for language in LANGUAGES:
        with (LOCALE_DIR / language / "LC_MESSAGES" / "django.mo").open("rb") as handle:
            compiled = gettext.GNUTranslations(handle)
        for msgid, forms in _catalog(language).items():
            if len(forms) == 1:
                assert compiled.gettext(msgid) == forms[0], f"{language} .mo is stale for {msgid!r}: run make messages"


def test_the_catalogs_hold_every_string_in_the_source(tmp_path: Path) -> None:
    """What `make messages` would extract today equals what the catalogs hold."""
    if shutil.which("xgettext") is None:
        from tests.conftest import _service_missing

        _service_missing("this test needs GNU gettext (apt-get install gettext)")
    root = Path(__file__).resolve().parents[2]
    copy = tmp_path / "extensions"
    shutil.copytree(root / "extensions", copy, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, str(root / "manage.py"), "makemessages", "-l", "de", "--no-location", "--no-obsolete"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={"DEBUG": "on", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )
    extracted = (copy / "locale" / "de" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    joined = extracted.replace('"\n"', "")  # wrapped strings on one line
    source_ids = {eval(m.group(1)) for m in re.finditer(r'^msgid (".*")$', joined, re.M) if m.group(1) != '""'}
    assert source_ids == set(_catalog("de")), "run `make messages` and translate the new strings"


VIEWERS = {
    "de_DE": ("Wert", "Erwarteter Abschluss", "Änderungsverlauf", "12.500,50 EUR", "31. März 2026"),
    "es_ES": ("Valor", "Cierre previsto", "Historial de cambios", "12\xa0500,50 EUR", "31 de marzo de 2026"),
    "fr_FR": ("Valeur", "Clôture prévue", "Historique des modifications", "12\xa0500,50 EUR", "31 mars 2026"),
    "pt_BR": ("Valor", "Fechamento previsto", "Histórico de alterações", "12.500,50 EUR", "31 de Março de 2026"),
}
ENGLISH_LABELS = ("Expected close", "Last change", "Change history", "Add note", "Organization", "Owner")


@pytest.mark.django_db
@pytest.mark.parametrize("locale", sorted(VIEWERS))
def test_a_panel_speaks_the_viewers_language_with_that_languages_formats(client, seeded_company, locale) -> None:
    world = seeded_company()
    Installation.objects.filter(pipedrive_user_id=ADMIN).update(locale=locale)

    response = client.get(f"/extensions/panels/deal/?{panel_query(record_id=world['deal']['id'])}")

    html = response.content.decode()
    language = locale.split("_")[0] if locale != "pt_BR" else "pt-br"
    assert f'<html lang="{language}' in html
    for expected in VIEWERS[locale]:
        assert expected in html, (locale, expected)
    for label in ENGLISH_LABELS:
        assert f">{label}<" not in html, (locale, label)
