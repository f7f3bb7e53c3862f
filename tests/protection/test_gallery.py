"""Protected galleries on real LFW faces: only protected templates on disk, search per method, keys, rekey, refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from faceprint.cli.app import main
from faceprint.errors import ConfigurationError, GalleryError, KeyMismatchError
from faceprint.gallery import open_gallery
from faceprint.gallery.protected import open_protected_gallery

from .conftest import lfw

SECRET = "a test secret of enough length"
ENROL = {"peirsol": ("Aaron_Peirsol", 1), "sorkin": ("Aaron_Sorkin", 1), "gul": ("Abdullah_Gul", 13)}
PROBE = ("peirsol", lfw("Aaron_Peirsol", 2))
#: people not enrolled, whose mean centres biohash (as `gallery create --centre-from` would)
CENTRE_PEOPLE = [("Adam_Sandler", 1), ("Abel_Pacheco", 1), ("Aaron_Guiel", 1), ("Abdoulaye_Wade", 4)]


def _centre(pipeline) -> np.ndarray:  # type: ignore[no-untyped-def]
    from faceprint.protection.biohash import fit_centre

    return fit_centre(np.stack([pipeline.embed_one(lfw(n, i)).embedding.vector for n, i in CENTRE_PEOPLE]))


def _make(path: Path, method: str, pipeline, *, keep: bool = True):  # type: ignore[no-untyped-def]
    centre = _centre(pipeline) if method == "biohash" else None
    g = open_protected_gallery(
        path, SECRET, protect=method, create=True, pipeline=pipeline, keep_source_images=keep, centre=centre
    )
    for subject, (name, i) in ENROL.items():
        g.enroll(subject, [lfw(name, i)])
    return g


def _plain_bytes(pipeline) -> list[bytes]:  # type: ignore[no-untyped-def]
    """The float32 and float64 bytes of each enrolled face's embedding, which a file scan would look for."""
    out = []
    for name, i in ENROL.values():
        v = pipeline.embed_one(lfw(name, i)).embedding.vector
        out += [np.asarray(v, "<f4").tobytes()[:32], np.asarray(v, "<f8").tobytes()[:32]]
    return out


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("method", ["biohash", "iom", pytest.param("ckks", marks=pytest.mark.slow)])
def test_a_protected_gallery_identifies_and_holds_no_plain_template(method: str, tmp_path: Path, pipeline) -> None:
    if method == "ckks":
        pytest.importorskip("tenseal")
    path = tmp_path / "g"
    with _make(path, method, pipeline) as g:
        r = g.identify(PROBE[1], k=3)
        assert r.best is not None and r.best.subject == PROBE[0] and r.identified
        assert [c.subject for c in r.candidates][0] == "peirsol" and len(r.candidates) == 3
        match, score = g.verify(PROBE[1], "peirsol")
        assert match and score == pytest.approx(r.best.score)
        assert not g.verify(PROBE[1], "gul")[0]
    files = _files(path)
    assert any(f.name == "protected.sqlite" for f in files)
    for f in files:
        data = f.read_bytes()
        for pattern in _plain_bytes(pipeline):
            assert pattern not in data, f"a plain embedding is in {f}"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_wrong_secret_other_mode_and_plain_opening_are_refused(tmp_path: Path, pipeline) -> None:
    path = tmp_path / "g"
    _make(path, "iom", pipeline, keep=False).close()
    with pytest.raises(KeyMismatchError, match="does not open"):
        open_protected_gallery(path, "somebody else's long secret")
    with pytest.raises(ConfigurationError, match="holds iom templates, not biohash"):
        open_protected_gallery(path, SECRET, protect="biohash")
    with pytest.raises(GalleryError, match="protected gallery"):
        open_gallery(path)
    plain = tmp_path / "plain"
    open_gallery(plain, create=True, pipeline=pipeline).close()
    with pytest.raises(GalleryError, match="unprotected gallery"):
        open_protected_gallery(plain, SECRET, protect="iom")
    with open_protected_gallery(path, SECRET) as g:  # the right secret still opens it
        assert g.identify(PROBE[1]).best.subject == "peirsol"  # type: ignore[union-attr]
        with pytest.raises(GalleryError, match="keeps no source images"):
            g.rekey()


def test_rekey_renews_every_template_from_the_stored_images(tmp_path: Path, pipeline) -> None:
    path = tmp_path / "g"
    with _make(path, "biohash", pipeline) as g:
        old_fp = g.key_fingerprint
        old_probe = g.protect_probe(PROBE[1])
        blobs = lambda: [r[0] for r in g._conn.execute("SELECT template FROM templates ORDER BY id")]  # noqa: E731
        before = blobs()
        assert g.rekey("a brand new secret of length") == 3
        assert g.key_fingerprint != old_fp and blobs() != before
        assert g.identify(PROBE[1]).best.subject == "peirsol"  # type: ignore[union-attr]
        with pytest.raises(KeyMismatchError):  # a probe protected under the old key is refused, not scored
            g.identify(old_probe)
    with pytest.raises(KeyMismatchError):
        open_protected_gallery(path, SECRET)
    open_protected_gallery(path, "a brand new secret of length").close()


def test_cli_create_enroll_identify_rekey(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delenv("FACEPRINT_PROTECT_SECRET", raising=False)
    secret = tmp_path / "secret"
    assert main(["protect", "keygen", str(secret)]) == 0
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert main(["protect", "keygen", str(secret)]) == 2  # never overwrites a secret
    g = str(tmp_path / "g")
    assert main(["gallery", "create", g, "--protect", "iom"]) == 6  # no secret: refused
    assert "no protection secret" in capsys.readouterr().err
    s = ["--secret-file", str(secret)]
    assert main(["gallery", "create", g, "--protect", "iom", "--keep-source-images", *s]) == 0
    name, i = ENROL["peirsol"]
    assert main(["gallery", "enroll", g, "peirsol", str(lfw(name, i)), *s]) == 0
    name, i = ENROL["gul"]
    assert main(["gallery", "enroll", g, "gul", str(lfw(name, i)), *s]) == 0
    capsys.readouterr()
    assert main(["gallery", "identify", g, str(PROBE[1]), "--json", *s]) == 0
    assert '"identified": "peirsol"' in capsys.readouterr().out
    assert main(["gallery", "rekey", g, *s]) == 0
    assert "re-protected 2 templates" in capsys.readouterr().out
    assert main(["gallery", "verify", g, str(PROBE[1]), "peirsol", *s]) == 0
    other = tmp_path / "other"
    other.write_text("another secret of enough length\n")
    assert main(["gallery", "identify", g, str(PROBE[1]), "--secret-file", str(other)]) == 6
    assert "does not open" in capsys.readouterr().err
    assert main(["gallery", "list", g, "--json", *s]) == 0
    assert [json.loads(ln)["name"] for ln in capsys.readouterr().out.splitlines()] == ["gul", "peirsol"]
    assert main(["gallery", "remove", g, "gul", *s]) == 0
    assert main(["gallery", "export", g, str(tmp_path / "x.npz")]) == 6  # an unprotected command: refused
    assert "protected gallery" in capsys.readouterr().err
