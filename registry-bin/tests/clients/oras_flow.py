"""oras-py flows against the registry, run by tests/clients/oras.rs.

usage: python3 oras_flow.py FLOW BASE_URL WORKDIR USER PASSWORD [CA_PEM]

FLOW is one of: artifact, referrer, chunked. Each step asserts what it
can see from the client; the Rust test checks the registry side. The
script prints one JSON object with the digests it pushed.

oras-py (0.2.x) answers a Basic challenge only with auth_backend="basic":
it sends every request (upload bodies included) without credentials first
and repeats it with them after the 401. It has no artifactType or
referrers API, so the manifest gets its artifactType in upload_manifest,
and the referrers query goes through the client's own do_request (same
session, same 401 handling).
"""

import hashlib
import json
import os
import sys

import oras.provider  # first: oras.decorator alone is a circular import

import oras.decorator
import oras.oci
import requests.exceptions

FLOW, BASE, WORK, USER, PASSWORD = sys.argv[1:6]
CA = sys.argv[6] if len(sys.argv) > 6 else None
HOST = BASE.split("://", 1)[1]
CONFIG = os.path.join(WORK, "docker-config.json")


def no_retry(seconds):
    # oras-py retries any failed request after sleeping; a retry would hide
    # a registry error (and cost seconds), so the flow fails instead.
    raise RuntimeError("oras-py retried a request: see the 'Retrying' log line")


oras.decorator.time.sleep = no_retry


class Registry(oras.provider.Registry):
    """oras-py's client, adding an artifactType to the next manifest."""

    artifact_type = None

    def upload_manifest(self, manifest, container):
        if self.artifact_type:
            manifest["artifactType"] = self.artifact_type
        self.last_manifest = manifest
        return super().upload_manifest(manifest, container)


def client():
    if BASE.startswith("https://"):
        r = Registry(hostname=HOST, insecure=False, tls_verify=CA, auth_backend="basic")
    else:
        r = Registry(hostname=HOST, insecure=True, auth_backend="basic")
    out = r.login(USER, PASSWORD, hostname=HOST, config_path=CONFIG)
    assert out.get("Status") == "Login Succeeded", out
    return r


def assert_needs_the_ca():
    # Verification on, but the system's roots only: the certificate is refused.
    r = Registry(hostname=HOST, insecure=False, tls_verify=True, auth_backend="basic")
    try:
        r.do_request(f"{BASE}/v2/", "GET")
    except requests.exceptions.SSLError:
        return
    raise AssertionError("oras-py reached the registry without the test CA")


def write(name, data):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def noise(seed, size):
    out = bytearray()
    block = seed.to_bytes(8, "little")
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def push(r, target, path, artifact_type, subject=None, **kwargs):
    r.artifact_type = artifact_type
    res = r.push(
        target=target,
        files=[path + ":application/vnd.test.file"],
        disable_path_validation=True,
        subject=subject,
        config_path=CONFIG,
        quiet=True,
        **kwargs,
    )
    assert res.status_code == 201, (target, res.status_code, res.text)
    # oras-py's own descriptor of what it sent (requests serializes `json=`
    # the way json.dumps does): the registry must have kept those bytes.
    sent = oras.oci.Subject.from_manifest(r.last_manifest)
    assert res.headers["Docker-Content-Digest"] == sent.digest, (res.headers, sent)
    return sent


def pull_and_compare(r, target, name, data):
    outdir = os.path.join(WORK, "pulled-" + target.rsplit("/", 1)[-1].replace(":", "-"))
    files = r.pull(target=target, outdir=outdir, config_path=CONFIG)
    assert [os.path.basename(f) for f in files] == [name], files
    with open(files[0], "rb") as f:
        assert f.read() == data, "pulled bytes differ from the pushed file"


def referrers(r, repo, digest, artifact_type=None):
    url = f"{BASE}/v2/{repo}/referrers/{digest}"
    if artifact_type:
        url += f"?artifactType={artifact_type}"
    res = r.do_request(url, "GET", headers={"Accept": "application/vnd.oci.image.index.v1+json"})
    assert res.status_code == 200, (url, res.status_code, res.text)
    return res


def main():
    r = client()
    result = {}
    if FLOW == "artifact":
        if CA:
            assert_needs_the_ca()
        data = noise(1, 300_000)
        path = write("report.bin", data)
        target = f"{HOST}/oras/artifact:v1"
        result["deleted"] = push(r, target, path, "application/vnd.test.report").digest
        pull_and_compare(r, target, "report.bin", data)
        pull_and_compare(r, f"{HOST}/oras/artifact@{result['deleted']}", "report.bin", data)
        notes = write("notes.bin", noise(5, 1_000))
        result["artifact"] = push(r, f"{HOST}/oras/artifact:v2", notes, "application/vnd.test.report").digest
        tags = r.get_tags(f"{HOST}/oras/artifact")
        assert tags == ["v1", "v2"], ("get_tags", tags)
        tags = r.get_tags(f"{HOST}/oras/artifact", N=1)
        assert tags == ["v1"], ("get_tags N=1", tags)
        # delete_tag resolves the tag with HEAD and deletes the manifest by digest.
        assert r.delete_tag(f"{HOST}/oras/artifact", "v1"), "delete_tag"
        tags = r.get_tags(f"{HOST}/oras/artifact")
        assert tags == ["v2"], ("get_tags after delete_tag", tags)
    elif FLOW == "referrer":
        target = f"{HOST}/oras/subject:v1"
        subject = push(r, target, write("image.bin", noise(2, 5_000)), "application/vnd.test.image")
        subject_digest = result["subject"] = subject.digest
        sig = write("signature.bin", noise(3, 700))
        referrer = push(r, f"{HOST}/oras/subject:sig", sig, "application/vnd.test.signature", subject=subject)
        result["referrer"] = referrer.digest
        index = referrers(r, "oras/subject", subject_digest).json()
        found = [(m["digest"], m.get("artifactType")) for m in index["manifests"]]
        assert found == [(result["referrer"], "application/vnd.test.signature")], found
        res = referrers(r, "oras/subject", subject_digest, "application/vnd.test.signature")
        assert len(res.json()["manifests"]) == 1, res.text
        res = referrers(r, "oras/subject", subject_digest, "application/vnd.test.other")
        assert res.json()["manifests"] == [], res.text
    elif FLOW == "chunked":
        # 20 PATCHes of 1 MB, each sent without credentials first: without
        # the registry draining refused bodies, most runs lost a 401 to a
        # connection reset.
        data = noise(4, 20_000_000)
        path = write("big.bin", data)
        target = f"{HOST}/oras/chunked:v1"
        result["artifact"] = push(
            r, target, path, "application/vnd.test.big", do_chunked=True, chunk_size=1_000_000
        ).digest
        pull_and_compare(r, target, "big.bin", data)
    else:
        raise SystemExit(f"unknown flow {FLOW}")
    print(json.dumps(result))


main()
