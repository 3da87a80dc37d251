#!/usr/bin/env python3
"""Turn what tests/fuzz/capture-seeds.sh recorded into fuzz seeds.

    convert.py RAW_DIR E2E_TMP_DIR TESTS_FUZZ_DIR

RAW_DIR holds the preload shim's files (see preload.c), E2E_TMP_DIR the
kept temporary directories of the end-to-end tests.  Seeds are written
as cap-<hash> files (replacing earlier ones) in the formats the targets
read (see each tests/fuzz/fuzz_*.c): tokens, device and job ids become
the placeholders of fuzz_srv.h, so they name what the fleetd of the
fuzz targets has.
"""
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

SEP = b"\n%%\n"
raw_dir, tmp_dir, out_dir = sys.argv[1:4]
corpus = os.path.join(out_dir, "corpus")
LIMIT = {"http": 120, "mqtt": 60, "agent_cmd": 40, "journal": 40,
         "config": 20, "range": 10, "bootenv": 10, "pki": 30}
written = {}


def seq_of(path):
    """Capture order: the number after the pid in the shim's names."""
    m = re.search(r"-(\d+)-(\d+)(?:\.\w+)?$", path)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


seen_keys = set()


def seed(target, data, ext="", key=None):
    """Write one seed; with @key, only the first seed of that kind."""
    if isinstance(data, str):
        data = data.encode()
    if not data or written.get(target, 0) >= LIMIT[target]:
        return
    if key is not None:
        if (target, key) in seen_keys:
            return
        seen_keys.add((target, key))
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = "cap-" + hashlib.sha1(data).hexdigest()[:12] + ext
    path = os.path.join(d, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        written[target] = written.get(target, 0) + 1


def clear_old():
    for f in glob.glob(os.path.join(corpus, "*", "cap-*")):
        os.unlink(f)


def chunks(items, n=8):
    for i in range(0, len(items), n):
        yield SEP.join(items[i:i + n])


# ------------------------------------------------------------------
# Placeholders
JOB_RE = re.compile(r"j-[0-9a-f]{16}")
SLOT_OF_TYPE = {"update": ("dev-1", "@job1@"), "rollback": ("dev-2", "@job2@"),
                "rotate": ("dev-3", "@job3@")}


def device_message(topic, payload):
    """An agent's publish, renamed onto fuzz_srv.h's devices and jobs."""
    parts = topic.split("/")
    if len(parts) < 3:
        return None
    kind = "/".join(parts[2:])
    try:
        j = json.loads(payload)
    except ValueError:
        return None
    dev, job = SLOT_OF_TYPE.get(j.get("type"), ("dev-1", "@job1@"))
    if isinstance(j.get("job"), str):
        j["job"] = job
    if isinstance(j.get("job"), dict) and "id" in j["job"]:
        j["job"]["id"] = "@job1@"
    return ("%s/%s/%s\n" % (parts[0], dev, kind)).encode() + \
        json.dumps(j, separators=(",", ":")).encode()


def http_request(head, body):
    """One request, its secrets and ids as placeholders."""
    lines = head.split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    path, _, version = rest.partition(b" ")
    p = path.decode("latin-1")
    p = JOB_RE.sub("@job1@", p)
    p = re.sub(r"^/api/v1/devices/[^/?]+", "/api/v1/devices/dev-1", p)
    p = re.sub(r"^/api/v1/bundles/[^/?]+", "/api/v1/bundles/@bundle@", p)
    out = [method + b" " + p.encode("latin-1") + b" " + version]
    for line in lines[1:]:
        if line.lower().startswith(b"authorization: bearer "):
            line = b"Authorization: Bearer @admin@"
        out.append(line)
    if body.startswith(b"{"):
        try:
            j = json.loads(body)
            if isinstance(j, dict) and "token" in j:
                j["token"] = "@enroll@"
            body = json.dumps(j, separators=(",", ":")).encode()
        except ValueError:
            pass
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def http_kind(req):
    """Method, path and body keys: one seed of each is enough."""
    line = req.split(b"\r\n", 1)[0].split(b" ")
    path = line[1].split(b"?")[0] if len(line) > 1 else b""
    body = req.split(b"\r\n\r\n", 1)[1]
    keys = ""
    try:
        j = json.loads(body)
        keys = ",".join(sorted(j)) if isinstance(j, dict) else type(j).__name__
    except ValueError:
        keys = "raw%d" % min(len(body), 1)
    return (line[0], path, b"range" in req.lower(), keys)


def split_requests(stream):
    """HTTP requests in a client's TLS byte stream (keep-alive)."""
    while stream:
        end = stream.find(b"\r\n\r\n")
        if end < 0 or not re.match(rb"^[A-Z]+ /", stream):
            return
        head, stream = stream[:end], stream[end + 4:]
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        body, stream = stream[:n], stream[n:]
        yield head, body


# ------------------------------------------------------------------
def convert_http():
    csrs = []
    for f in sorted(glob.glob(os.path.join(raw_dir, "ssl-*.raw"))):
        with open(f, "rb") as fh:
            stream = fh.read()
        for head, body in split_requests(stream):
            if len(body) > 64 * 1024:
                continue
            req = http_request(head, body)
            seed("http", req, ".req", key=http_kind(req))
            m = re.search(rb"(?im)^range:\s*bytes=(\d+)-\s*$", head)
            if m:
                have = int(m.group(1))
                size = max(have + 1, 24064)
                seed("range", b"%d %d\nbytes=%d-" % (size, have, have))
                seed("range", b"%d %d\n bytes %d-%d/%d" %
                     (size, have, have, size - 1, size))
            if b'"csr"' in body:
                try:
                    csrs.append(json.loads(body)["csr"].encode())
                except (ValueError, KeyError):
                    pass
    for c in csrs:
        seed("pki", c, ".pem")


def convert_mqtt():
    agents, cmds = {}, {}
    for f in sorted(glob.glob(os.path.join(raw_dir, "mqtt-*.msg")), key=seq_of):
        with open(f, "rb") as fh:
            topic, _, payload = fh.read().partition(b"\n")
        t = topic.decode("latin-1")
        pid = seq_of(f)[0]
        if "/mqtt-fleet-agent" in f or "/mqtt-fleet-sim" in f:
            m = device_message(t, payload)
            if m:
                agents.setdefault(pid, []).append(m)
        elif re.match(r"^[^/]+/[^/]+/cmd$", t):
            cmds.setdefault(pid, []).append(payload)
    for msgs in agents.values():
        for c in chunks(msgs):
            seed("mqtt", c, ".msg")
    for msgs in cmds.values():
        for c in chunks(msgs):
            seed("agent_cmd", b"\n%%\n" + c, ".txt")
    return [m for msgs in cmds.values() for m in msgs]


def convert_files(cmds):
    for f in sorted(glob.glob(os.path.join(raw_dir, "file-*")), key=seq_of):
        with open(f, "rb") as fh:
            data = fh.read()
        base = os.path.basename(f)
        if base.startswith("file-ota.json"):
            j = json.loads(data)
            job = j.get("job") or {}
            seed("journal", data, ".json",
                 key=(job.get("type"), job.get("state"), job.get("stage"),
                      tuple(sorted(k for k, v in job.items() if v))))
        elif base.startswith("file-commands.json"):
            seed("agent_cmd", data + SEP + SEP.join(cmds[:3]), ".txt")
        elif base.startswith(("file-agent.conf", "file-fleetctl.conf")):
            seed("config", data, ".conf",
                 key=tuple(sorted(re.findall(rb"(?m)^(\w+)\s*=", data))))


def env_copy(path):
    """A sim U-Boot environment copy as fuzz_bootenv takes it: the flags
    byte and the data up to its end (the CRC is the harness's)."""
    with open(path, "rb") as fh:
        b = fh.read()
    data = b[5:]
    end = data.find(b"\0\0")
    return b[4:5] + (data[:end + 2] if end >= 0 else data[:4000])


def grubenv_of(copy):
    pairs = [p for p in copy[1:].split(b"\0") if b"=" in p]
    text = b"# GRUB Environment Block\n" + b"".join(p + b"\n" for p in pairs)
    return text + b"#" * max(0, 1024 - len(text))


def convert_bootenv():
    for sim in sorted(glob.glob(os.path.join(tmp_dir, "*/agents/*/sim"))):
        a = os.path.join(sim, "uboot.env")
        b = os.path.join(sim, "uboot-redund.env")
        if os.path.exists(a) and os.path.exists(b):
            ca, cb = env_copy(a), env_copy(b)
            seed("bootenv", grubenv_of(ca) + SEP + ca + SEP + cb, ".env")


def der_of(pem_path):
    return subprocess.run(["openssl", "x509", "-in", pem_path, "-outform",
                           "DER"], check=True, capture_output=True).stdout


def convert_pki():
    for d in sorted(glob.glob(os.path.join(tmp_dir, "*"))):
        for p in sorted(glob.glob(os.path.join(d, "agents/*/state/*.pem"))):
            with open(p, "rb") as fh:
                pem = fh.read()
            if b"PRIVATE KEY" in pem:
                continue
            extra = b""
            if p.endswith("/cert.pem"):
                extra = SEP + der_of(p)
            seed("pki", pem + extra, ".pem")
    # t2101 rotated dev-01 and kept its old, now revoked, certificate
    old = glob.glob(os.path.join(tmp_dir, "*/old-01.pem"))
    if not old:
        print("convert: no t2101 directory: data/pki-* unchanged",
              file=sys.stderr)
        return
    d = os.path.dirname(old[0])
    data = os.path.join(out_dir, "data")
    for src, dst in (("state/ca/trust.pem", "pki-ca.pem"),
                     ("state/ca/crl.pem", "pki-crl.pem")):
        with open(os.path.join(d, src), "rb") as fh, \
                open(os.path.join(data, dst), "wb") as out:
            out.write(fh.read())
    now = int(os.path.getmtime(os.path.join(d, "state/ca/crl.pem"))) + 60
    with open(os.path.join(data, "pki-now"), "w") as out:
        out.write("%d\n" % now)
    with open(os.path.join(d, "state/ca/crl.pem"), "rb") as fh:
        seed("pki", fh.read(), ".pem")
    for p in [old[0]] + sorted(glob.glob(os.path.join(d, "agents/*/state/cert.pem"))):
        with open(p, "rb") as fh:
            seed("pki", fh.read() + SEP + der_of(p), ".pem")


clear_old()
convert_http()
cmds = convert_mqtt()
convert_files(cmds)
convert_bootenv()
convert_pki()
for t in sorted(written):
    print("capture-seeds: %d new seeds for %s" % (written[t], t))
