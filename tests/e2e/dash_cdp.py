#!/usr/bin/env python3
"""Drive headless Chromium over the DevTools protocol for the dashboard
test (t9020): no library beyond python3's own, the protocol over
--remote-debugging-pipe (fd 3 in, fd 4 out, NUL-ended JSON messages).

    dash_cdp.py BASE_URL OUT_DIR STEPS_FILE > results.json

(CDP_PROFILE: Chromium's profile dir, made empty; default a temp dir.)

Chromium reaches nothing but BASE_URL's origin: every other host goes to a
proxy on a closed 127.0.0.1 port (loopback included, `<-loopback>`),
host names do not resolve, and every request the page makes is recorded
(`requests`) so the test can check that all went to BASE_URL.  The
server's TLS key is trusted by its SPKI hash (CHROMIUM_SPKI), nothing
else.

STEPS_FILE: one step a line, "NAME ACTION ARG" (ARG: the rest of the
line); the results are {NAME: {"ok": bool, "value": ...}}:
    open PATH          navigate to BASE_URL + PATH, wait for the load
    text TEXT          wait (up to CDP_WAIT s) until the page shows TEXT
    notext TEXT        the page does not show TEXT (now)
    login TOKEN        type TOKEN into the login form and submit it
    eval JS            the value of the expression JS
    click SELECTOR     click the first element matching SELECTOR
    shot FILE          a full-page PNG screenshot into OUT_DIR/FILE
    run COMMAND        run COMMAND (sh -c), e.g. to change what a page shows
    cookies -          the browser's cookies
Also in the results: "console_errors" (console.error, exceptions, error
log entries such as CSP violations or failed loads), "failed_requests"
(network failures and HTTP statuses >= 400), "dialogs" (alert & co, each
dismissed), "requests" (every URL requested).
"""
import base64
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time

WAIT = float(os.environ.get("CDP_WAIT", "20"))


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there afterwards
    return port


class Browser:
    def __init__(self, base, profile):
        self.base = base
        self.out = {"console_errors": [], "failed_requests": [],
                    "dialogs": [], "requests": []}
        self.buf = b""
        self.next_id = 0
        self.session = None
        origin = base.split("://", 1)[1]
        r_in, self.w_in = os.pipe()  # browser reads fd 3
        self.r_out, w_out = os.pipe()  # browser writes fd 4

        def fds():
            a, b = os.dup(r_in), os.dup(w_out)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [os.environ.get("CHROMIUM", "chromium"), "--headless=new",
                "--remote-debugging-pipe", "--user-data-dir=" + profile,
                "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps",
                "--disable-domain-reliability", "--metrics-recording-only",
                "--no-pings", "--disable-gpu", "--no-sandbox",
                "--proxy-server=http://127.0.0.1:%d" % closed_port(),
                "--proxy-bypass-list=<-loopback>;" + origin,
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--ignore-certificate-errors-spki-list=" +
                os.environ["CHROMIUM_SPKI"],
                "--window-size=1280,1000", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=fds, close_fds=False,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(
                                         profile, "chromium.log"), "w"))
        os.close(r_in)
        os.close(w_out)
        target = self.call("Target.createTarget", {"url": "about:blank"},
                           top=True)["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True},
                                 top=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable")

    def send(self, method, params, top):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if not top:
            msg["sessionId"] = self.session
        os.write(self.w_in, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def pump(self, timeout):
        """Read and handle messages for up to @timeout s; the replies."""
        replies = {}
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    replies[msg["id"]] = msg
                else:
                    self.event(msg)
            if replies:
                return replies
            left = end - time.monotonic()
            if left <= 0:
                return replies
            ready, _, _ = select.select([self.r_out], [], [], left)
            if ready:
                data = os.read(self.r_out, 1 << 20)
                if not data:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += data

    def call(self, method, params=None, top=False):
        want = self.send(method, params or {}, top)
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            got = self.pump(end - time.monotonic())
            if want in got:
                if "error" in got[want]:
                    raise RuntimeError("%s: %s" % (method,
                                                   got[want]["error"]))
                return got[want]["result"]
        raise RuntimeError("%s: no reply" % method)

    def event(self, msg):
        m, p = msg["method"], msg.get("params", {})
        if m == "Runtime.consoleAPICalled" and p["type"] in ("error",
                                                               "assert"):
            self.out["console_errors"].append(
                " ".join(str(a.get("value", a.get("description", "")))
                         for a in p["args"]))
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.out["console_errors"].append(
                d.get("exception", {}).get("description", d["text"]))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            self.out["console_errors"].append(
                "%s %s" % (e["text"], e.get("url", "")))
        elif m == "Network.requestWillBeSent":
            self.out["requests"].append(p["request"]["url"])
        elif m == "Network.responseReceived" and \
                p["response"]["status"] >= 400:
            self.out["failed_requests"].append(
                "%d %s" % (p["response"]["status"], p["response"]["url"]))
        elif m == "Network.loadingFailed":
            self.out["failed_requests"].append(
                "%s (%s)" % (p["errorText"], p.get("type", "")))
        elif m == "Page.javascriptDialogOpening":
            self.out["dialogs"].append(p["message"])
            self.send("Page.handleJavaScriptDialog", {"accept": False},
                      False)

    def js(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr,
                                           "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"]["text"])
        return r["result"].get("value")

    def shows(self, text):
        return bool(self.js("document.body.innerText.includes(%s)" %
                            json.dumps(text)))

    def step(self, action, arg, out_dir):
        if action == "open":
            self.call("Page.navigate", {"url": self.base + arg})
            return self.wait("document.readyState === 'complete'")
        if action == "text":
            return self.wait("document.body.innerText.includes(%s)" %
                             json.dumps(arg))
        if action == "notext":
            return not self.shows(arg), None
        if action == "login":
            self.js("document.getElementById('token').value = %s;"
                    "document.getElementById('login-form').requestSubmit()"
                    % json.dumps(arg))
            return True, None
        if action == "eval":
            return True, self.js(arg)
        if action == "click":
            return bool(self.js("(e => e ? (e.click(), true) : false)("
                                "document.querySelector(%s))" %
                                json.dumps(arg))), None
        if action == "shot":
            png = self.call("Page.captureScreenshot",
                            {"format": "png", "captureBeyondViewport": True})
            with open(os.path.join(out_dir, arg), "wb") as f:
                f.write(base64.b64decode(png["data"]))
            return True, None
        if action == "run":
            rc = subprocess.run(["sh", "-c", arg], timeout=WAIT,
                                stdout=subprocess.DEVNULL).returncode
            return rc == 0, rc
        if action == "cookies":
            return True, self.call("Network.getCookies")["cookies"]
        raise RuntimeError("unknown action " + action)

    def wait(self, expr):
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            if self.js(expr):
                return True, None
            self.pump(0.1)
        return False, None

    def close(self):
        try:
            self.call("Browser.close", top=True)
        except RuntimeError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    base, out_dir, steps = sys.argv[1:4]
    results = {}
    profile = os.environ.get("CDP_PROFILE") or tempfile.mkdtemp()
    os.makedirs(profile, exist_ok=True)
    b = Browser(base, profile)
    try:
        for line in open(steps):
            if not line.strip() or line.startswith("#"):
                continue
            name, action, arg = (line.rstrip("\n").split(" ", 2) + [""])[:3]
            try:
                ok, value = b.step(action, arg, out_dir)
            except RuntimeError as e:
                ok, value = False, str(e)
            results[name] = {"ok": ok, "value": value}
            b.pump(0.05)
        b.pump(0.3)  # late events of the last page
    finally:
        b.close()
    results.update(b.out)
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
