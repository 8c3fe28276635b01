#!/usr/bin/env python3
"""Bearer token server for the registry tests (tests/common/registry.rs starts it).

Serves on 127.0.0.1 only, on a port the kernel picks. On start it makes a self-signed
P-256 certificate (CA:TRUE), writes it to DIR/root.crt for the registry's
`rootcertbundle`, then writes its port to DIR/token.port (atomically, once it listens).

  GET  /token?service=S&scope=repository:R:pull,push[&scope=...]
  POST /token   (OAuth2 form: grant_type=password, username, password, service, scope)
      -> {"token": T, "access_token": T, "expires_in": 300, "issued_at": ...}
      T is an ES256 JWT whose header carries the certificate in `x5c`.
      Right credentials (HTTP Basic, or the form's username/password): every requested
      action. No credentials: `pull` only with --anonymous-pull, else an empty access
      list, so the registry answers 401 insufficient_scope. Wrong credentials: 401.
  GET  /count -> the number of /token requests answered so far (any status), as text.

It exits when its stdin reaches end of file, so it cannot outlive the test process.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_cert():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockhand test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def parse_scope(scope):
    """`repository:R:pull,push` -> ("repository", "R", ["pull", "push"]).

    The name may itself contain a colon (a registry host with a port), so the type is
    the part before the first colon and the actions the part after the last one."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first < 0 or last <= first:
        return None
    actions = [a for a in scope[last + 1 :].split(",") if a]
    return scope[:first], scope[first + 1 : last], actions


class State:
    def __init__(self, args, key, cert):
        self.args = args
        self.key = key
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.count = 0
        self.lock = threading.Lock()

    def token(self, subject, access):
        now = int(time.time())
        header = {"alg": "ES256", "typ": "JWT", "x5c": [self.x5c]}
        claims = {
            "iss": self.args.issuer,
            "sub": subject,
            "aud": self.args.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input + "." + b64url(sig), now


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set before serving

    def log_message(self, *args):  # quiet: the tests read their own output
        pass

    def send(self, status, body, content_type="application/json", extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def basic_credentials(self):
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            raw = base64.b64decode(header[6:].strip()).decode()
        except Exception:
            return ("", "\0invalid")
        user, _, password = raw.partition(":")
        return (user, password)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/count":
            with self.state.lock:
                count = self.state.count
            self.send(200, str(count), "text/plain")
            return
        if url.path != "/token":
            self.send(404, '{"error":"not found"}')
            return
        self.answer(parse_qs(url.query), self.basic_credentials())

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != "/token":
            self.send(404, '{"error":"not found"}')
            return
        length = int(self.headers.get("Content-Length", "0") or "0")
        form = parse_qs(self.rfile.read(length).decode())
        creds = None
        if "username" in form or "password" in form:
            creds = (form.get("username", [""])[0], form.get("password", [""])[0])
        else:
            creds = self.basic_credentials()
        self.answer(form, creds)

    def answer(self, params, creds):
        st = self.state
        with st.lock:
            st.count += 1
        service = params.get("service", [""])[0]
        if service and service != st.args.service:
            self.send(400, json.dumps({"error": "unknown service " + service}))
            return
        if creds is not None and creds != (st.args.user, st.args.password):
            self.send(
                401,
                '{"errors":[{"code":"UNAUTHORIZED","message":"wrong credentials"}]}',
                extra=[("WWW-Authenticate", 'Basic realm="dockhand-test-token"')],
            )
            return
        access = []
        for scope in params.get("scope", []):
            # Some clients put several scopes in one parameter, separated by spaces.
            for one in scope.split():
                parsed = parse_scope(one)
                if parsed is None:
                    continue
                kind, name, actions = parsed
                if creds is None:
                    actions = [a for a in actions if a == "pull"] if st.args.anonymous_pull else []
                if actions:
                    access.append({"type": kind, "name": name, "actions": actions})
        subject = creds[0] if creds else ""
        token, now = st.token(subject, access)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        body = {
            "token": token,
            "access_token": token,
            "expires_in": 300,
            "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.send(200, json.dumps(body))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--anonymous-pull", action="store_true")
    args = p.parse_args()

    key, cert = make_cert()
    with open(os.path.join(args.dir, "root.crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))

    Handler.state = State(args, key, cert)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True

    port_file = os.path.join(args.dir, "token.port")
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
