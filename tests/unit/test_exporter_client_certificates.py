"""client_auth_type on its own, without client_allowed_sans (whose name check turns away a client without a
certificate by itself): RequireAndVerifyClientCert lets in only clients that present a certificate from the
CA; VerifyClientCertIfGiven also lets in clients that present none. A real exporter, real handshakes."""

import pytest

from tests.support.client_certificates import certificate_authority, client_certificate
from tests.support.exporter_process import request, running_exporter, unverified_client
from tests.support.tls_files import self_signed


def client(certificate=None):
    context = unverified_client()
    if certificate:
        context.load_cert_chain(*certificate)
    return context


def answered(port, context) -> bool:
    try:
        return request(port, "/healthz", context=context)[0] == 200
    except OSError:  # a handshake refused, or a connection closed unanswered
        return False


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    authority = certificate_authority(directory)
    return {
        "server": self_signed(directory),
        "authority": authority,
        "client": client_certificate(directory, authority, "scraper", "DNS:scraper.example"),
    }


def web_config(tmp_path, pki, auth_type):
    cert, key = pki["server"]
    path = tmp_path / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"  client_ca_file: {pki['authority'][0]}\n  client_auth_type: {auth_type}\n"
    )
    return path


def test_require_and_verify_turns_away_a_client_without_a_certificate(tmp_path, pki):
    config = web_config(tmp_path, pki, "RequireAndVerifyClientCert")
    with running_exporter(config, client(pki["client"])) as port:
        assert answered(port, client(pki["client"]))
        assert not answered(port, client())


def test_verify_if_given_lets_in_a_client_without_a_certificate(tmp_path, pki):
    config = web_config(tmp_path, pki, "VerifyClientCertIfGiven")
    with running_exporter(config, client()) as port:
        assert answered(port, client())
        assert answered(port, client(pki["client"]))
