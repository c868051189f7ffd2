"""Certificates you bring: each PEM checked at load, a bad file skipped with one warning."""

from __future__ import annotations

import datetime as dt

import pytest

from cosmos_core.certs import CertificateError, for_host, load_dir, name_matches, parse_pem, write_files
from tests.support.tls import make_ca, other_key_pem


@pytest.fixture(scope="module")
def ca():
    return make_ca()


def test_parse_reads_names_issuer_expiry_and_normalises_pem(ca) -> None:
    pem = ca.issue(["a.example.com", "www.a.example.com"], days=30)
    cert = parse_pem(b"\n\n" + pem.replace(b"\n-----BEGIN", b"\n\n-----BEGIN"), "a.pem")
    assert cert.names == ("a.example.com", "www.a.example.com")
    assert "Cosmos Test CA" in cert.issuer
    assert 29 < cert.days_left() <= 30
    assert b"\n\n" not in cert.pem and cert.pem.endswith(b"-----END PRIVATE KEY-----\n")
    assert cert.pem.count(b"BEGIN CERTIFICATE") == 2
    assert cert.name == "a.example.com" and cert.file == "certs/a.example.com.pem"
    assert "PRIVATE" not in repr(cert)


def test_cn_is_used_only_without_sans(ca) -> None:
    assert parse_pem(ca.issue([], cn="cn.example.com", san=False), "x").names == ("cn.example.com",)
    assert parse_pem(ca.issue(["san.example.com"], cn="cn.example.com"), "x").names == ("san.example.com",)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda ca: b"not a pem at all", "no PEM certificate"),
        (lambda ca: ca.issue(["a.test"]).split(b"-----BEGIN PRIVATE KEY")[0], "no PEM private key"),
        (lambda ca: ca.issue(["a.test"]) + other_key_pem(), "more than one private key"),
        (lambda ca: ca.issue(["a.test"], key=None).replace(b"MII", b"XXX", 1), "cannot be parsed"),
        (lambda ca: ca.issue(["a.test"]).split(b"-----BEGIN PRIVATE KEY")[0] + other_key_pem(), "does not match"),
        (lambda ca: ca.issue(["a.test"], days=-1, start_days=-10), "expired on"),
        (lambda ca: ca.issue(["a.test"], start_days=5, days=10), "not valid before"),
    ],
)
def test_bad_pem_is_refused_with_the_reason(ca, make, reason) -> None:
    with pytest.raises(CertificateError) as err:
        parse_pem(make(ca), "dir/bad.pem")
    assert reason in err.value.reason
    assert str(err.value).startswith("certificate dir/bad.pem: ")


def test_load_dir_skips_each_bad_file_with_one_warning(ca, tmp_path) -> None:
    from structlog.testing import capture_logs

    (tmp_path / "good.pem").write_bytes(ca.issue(["good.test"]))
    (tmp_path / "expired.pem").write_bytes(ca.issue(["old.test"], days=-1, start_days=-10))
    (tmp_path / "mismatch.pem").write_bytes(ca.issue(["m.test"]).split(b"-----BEGIN PRIVATE KEY")[0] + other_key_pem())
    (tmp_path / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                                          + other_key_pem())
    (tmp_path / "notes.txt").write_text("ignored")
    with capture_logs() as logs:
        certs = load_dir(tmp_path)
    assert [c.name for c in certs] == ["good"]
    assert certs[0].source == f"dir:{tmp_path}"
    skipped = [e for e in logs if e["event"] == "certificate_skipped"]
    assert len(skipped) == 3 and all(e["log_level"] == "warning" for e in skipped), skipped
    joined = "\n".join(f"{e['file']} {e['reason']}" for e in skipped)
    for file, reason in (("expired.pem", "expired on"), ("mismatch.pem", "does not match"),
                         ("broken.pem", "cannot be parsed")):
        assert file in joined and reason in joined
    assert "PRIVATE KEY" not in repr(logs)


def test_missing_directory_is_one_error(tmp_path) -> None:
    with pytest.raises(CertificateError, match="directory cannot be read"):
        load_dir(tmp_path / "nope")


def test_host_matching_exact_beats_wildcard_and_one_label_only(ca) -> None:
    wild = parse_pem(ca.issue(["*.example.com"]), "w", name="wild")
    exact = parse_pem(ca.issue(["a.example.com"], days=10), "e", name="exact")
    assert name_matches("*.example.com", "x.example.com")
    assert not name_matches("*.example.com", "a.b.example.com")
    assert not name_matches("*.example.com", "example.com")
    assert for_host([wild, exact], "a.example.com") is exact
    assert for_host([wild, exact], "b.example.com") is wild
    assert for_host([wild, exact], "other.test") is None


def test_write_files_makes_keys_private(ca, tmp_path) -> None:
    write_files(tmp_path, {"certs/a.pem": b"secret", "crt-list": b"certs/a.pem\n"})
    assert (tmp_path / "certs/a.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "crt-list").stat().st_mode & 0o777 == 0o644


def test_expiry_is_judged_against_the_given_clock(ca) -> None:
    pem = ca.issue(["a.test"], days=5)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=6)
    with pytest.raises(CertificateError, match="expired"):
        parse_pem(pem, "a.pem", now=later)


def test_cosmos_certs_lists_names_issuer_expiry_source_and_services(ca, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cosmos_core.cli import app

    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "app.pem").write_bytes(ca.issue(["first.example.com", "www.example.com"]))
    (certs / "wild.pem").write_bytes(ca.issue(["*.example.com"]))
    (certs / "bad.pem").write_bytes(b"junk")
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"table": "t", "candidates": [
        {"serviceName": "one", "configMode": "host", "predicate": "first.example.com", "containers": []},
        {"serviceName": "two", "configMode": "host", "predicate": "second.example.com", "containers": []},
        {"serviceName": "three", "configMode": "host", "predicate": "other.test", "containers": []},
        {"serviceName": "four", "configMode": "path", "predicate": "/x", "containers": []},
        {"serviceName": "five", "configMode": "host", "predicate": "www.example.com", "https": "off", "containers": []},
    ]}))
    store = f"sqlite://{tmp_path}/s.db"
    runner = CliRunner()
    assert runner.invoke(app, ["generate", str(payload), "--store", store]).exit_code == 0
    result = runner.invoke(app, ["certs", "--store", store, "--certs-dir", str(certs), "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["certificates"]}
    assert set(rows) == {"app", "wild"}
    # five is https=off: served on HTTP only, so it uses no certificate
    assert rows["app"]["services"] == ["t/one"] and rows["wild"]["services"] == ["t/two"]
    assert rows["app"]["names"] == ["first.example.com", "www.example.com"]
    assert rows["app"]["source"] == f"dir:{certs}" and "Cosmos Test CA" in rows["app"]["issuer"]
    assert 89 < rows["app"]["days_left"] <= 90
    text = runner.invoke(app, ["certs", "--store", store, "--certs-dir", str(certs)])
    assert text.exit_code == 0 and "services: t/one" in text.stdout and "bad.pem" in text.stderr + text.stdout


def test_cosmos_certs_lists_skipped_files_with_their_reason(ca, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from cosmos_core.cli import app

    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "good.pem").write_bytes(ca.issue(["good.example.com"]))
    (certs / "junk.pem").write_bytes(b"junk")
    (certs / "expired.pem").write_bytes(ca.issue(["old.example.com"], days=-1, start_days=-10))
    mismatched = ca.issue(["x.example.com"])
    (certs / "mismatch.pem").write_bytes(mismatched[:mismatched.index(b"-----BEGIN PRIVATE")] + other_key_pem())
    store = f"sqlite://{tmp_path}/s.db"
    runner = CliRunner()
    result = runner.invoke(app, ["certs", "--store", store, "--certs-dir", str(certs), "--json"])
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [r["name"] for r in listed["certificates"]] == ["good"]
    skipped = {entry["file"]: entry["reason"] for entry in listed["skipped"]}
    assert set(skipped) == {str(certs / n) for n in ("junk.pem", "expired.pem", "mismatch.pem")}
    assert "no PEM certificate" in skipped[str(certs / "junk.pem")]
    assert skipped[str(certs / "expired.pem")].startswith("expired on")
    assert "does not match" in skipped[str(certs / "mismatch.pem")]
    text = runner.invoke(app, ["certs", "--store", store, "--certs-dir", str(certs)])
    assert f"skipped {certs / 'junk.pem'}: no PEM certificate" in text.stdout


def test_files_whose_names_sanitise_alike_keep_names_of_their_own(ca, tmp_path) -> None:
    """``a b.pem`` and ``a_b.pem`` once both became ``certs/a_b.pem``: one replaced the other silently."""
    from cosmos_core.certs import file_name, scan_dir
    from cosmos_core.tls import TLSConfig, files

    (tmp_path / "a b.pem").write_bytes(ca.issue(["web.test"]))
    (tmp_path / "a_b.pem").write_bytes(ca.issue(["ec.test"]))
    (tmp_path / "*.w.test.pem").write_bytes(ca.issue(["*.w.test"]))
    found, skipped = scan_dir(tmp_path)
    assert skipped == []
    by_name = {c.name: c.names for c in found}
    assert by_name["a_b"] == ("ec.test",) and by_name[file_name("a b")] == ("web.test",)
    assert by_name[file_name("*.w.test")] == ("*.w.test",)
    assert file_name("a b").startswith("a_b-") and file_name("a b") != file_name("a?b")
    assert file_name("*.w.test").startswith("_wildcard_.w.test-")
    bundle = files(TLSConfig(certificates=tuple(found)))
    assert len(bundle[
        "crt-list"].decode().splitlines()) == 3 == len({p for p in bundle if p.startswith("certs/")})
    assert {c.path for c in found} == {str(tmp_path / n) for n in ("a b.pem", "a_b.pem", "*.w.test.pem")}


def test_a_file_named_like_another_files_name_is_skipped_naming_the_other(ca, tmp_path) -> None:
    from cosmos_core.certs import file_name, scan_dir

    (tmp_path / "a b.pem").write_bytes(ca.issue(["web.test"]))
    (tmp_path / f"{file_name('a b')}.pem").write_bytes(ca.issue(["ec.test"]))
    found, skipped = scan_dir(tmp_path)
    assert [c.names for c in found] == [("web.test",)]
    assert skipped == [(str(tmp_path / f"{file_name('a b')}.pem"),
                        f"its certificate name {file_name('a b')!r} is taken by {tmp_path / 'a b.pem'}")]


@pytest.mark.parametrize(
    "names, cn, san, reason",
    [
        ([], "10.0.0.1", False, "'10.0.0.1' is an IP address"),
        (["10.0.0.1"], None, True, "'10.0.0.1' is an IP address"),
        (["web.test", "::1"], None, True, "'::1' is an IP address"),
        (["web.test", "bad name.test"], None, True, "'bad name.test' is not a DNS host name"),
        ([], "bad name.test", False, "'bad name.test' is not a DNS host name"),
        (["a.*.test"], None, True, "'a.*.test' is not a DNS host name"),
        (["*"], None, True, "'*' is not a DNS host name"),
        (["*.*.test"], None, True, "'*.*.test' is not a DNS host name"),
        (["-a.test"], None, True, "'-a.test' is not a DNS host name"),
        (["1.2.3"], None, True, "'1.2.3' is not a DNS host name"),
        (["a..test"], None, True, "'a..test' is not a DNS host name"),
        (["web.test/x"], None, True, "'web.test/x' is not a DNS host name"),
    ],
)
def test_a_name_that_is_no_dns_host_name_refuses_the_file(ca, names, cn, san, reason) -> None:
    with pytest.raises(CertificateError) as err:
        parse_pem(ca.issue(names, cn=cn, san=san), "dir/x.pem")
    assert err.value.reason == f"names {reason}" or err.value.reason.startswith(f"names {reason}")


def test_wildcard_and_plain_host_names_are_accepted(ca) -> None:
    pem = ca.issue(["*.example.com", "example.com", "xn--bcher-kva.test", "a-1.b2.test", "_svc.int.test"])
    assert parse_pem(pem, "x").names == ("*.example.com", "example.com", "xn--bcher-kva.test", "a-1.b2.test",
                                         "_svc.int.test")
