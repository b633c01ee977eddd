"""Shared by the demo STAND-INS (kubeadm, kubelet, kubectl, kube-apiserver): kubeadm and kubelet cannot run here
(no real kubelet/containers), so these play their part, asserting what they receive and doing just enough for the
real keepalived, nginx and etcd around them to work. Environment from cluster.sh: KHD_ROOT, KHD_NODE, KHD_IP,
KHD_STATE, KHD_ENDPOINT (VIP:port), KHD_MASTERS (name=ip,...), KHD_K8S (kubernetes version)."""
import base64, json, os, re, ssl, subprocess, sys, tempfile, time, urllib.request

ROOT = os.environ.get("KHD_ROOT", "")
NODE = os.environ.get("KHD_NODE", "")
IP = os.environ.get("KHD_IP", "")
STATE = os.environ.get("KHD_STATE", "")
ENDPOINT = os.environ.get("KHD_ENDPOINT", "")
PKI = "/etc/kubernetes/pki"


def rootp(p):
    return ROOT + p


def log_path():
    d = rootp("/var/log/kubeha-demo")
    os.makedirs(d, exist_ok=True)
    return d


def record(tool, argv):
    with open(os.path.join(log_path(), "calls.log"), "a") as f:
        f.write(tool + " " + " ".join(argv) + "\n")


def fail(tool, msg):
    sys.stderr.write(f"demo STAND-IN {tool} on {NODE}: {msg}\n")
    sys.exit(1)


def masters():
    return [tuple(x.split("=", 1)) for x in os.environ.get("KHD_MASTERS", "").split(",") if x]


def expected_api():
    minor = int(os.environ.get("KHD_K8S", "1.31.0").split(".")[1])
    for hi, api in ((11, "v1alpha2"), (12, "v1alpha3"), (14, "v1beta1"), (21, "v1beta2"), (30, "v1beta3")):
        if minor <= hi:
            return "kubeadm.k8s.io/" + api
    return "kubeadm.k8s.io/v1beta4"


def sign(ca, cn, out, org=None, sans=(), usage="serverAuth,clientAuth"):
    """A certificate signed by the CA `ca` (a system path prefix: .../ca -> ca.crt/ca.key under the root), written
    to `out`.crt/.key under the root, as kubeadm's certs phase would."""
    crt, key = rootp(out + ".crt"), rootp(out + ".key")
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    subj = f"/CN={cn}" + (f"/O={org}" if org else "")
    ext = f"keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={usage}\n"
    if sans:
        ext += "subjectAltName=" + ",".join(("IP:" if re.match(r"^[0-9.]+$", s) else "DNS:") + s for s in sans) + "\n"
    with tempfile.NamedTemporaryFile("w", suffix=".ext", delete=False) as f:
        f.write(ext)
    try:
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-subj", subj, "-out", crt + ".csr"], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", crt + ".csr", "-CA", rootp(ca + ".crt"), "-CAkey",
                        rootp(ca + ".key"), "-CAcreateserial", "-days", "365", "-sha256", "-extfile", f.name,
                        "-out", crt], check=True, capture_output=True)
    finally:
        os.unlink(f.name)
        if os.path.exists(crt + ".csr"):
            os.unlink(crt + ".csr")
    os.chmod(key, 0o600)
    return crt, key


def b64file(p):
    return base64.b64encode(open(p, "rb").read()).decode()


def write_kubeconfig(path, server, user, cert=None, key=None, token=None):
    u = {"client-certificate-data": b64file(cert), "client-key-data": b64file(key)} if cert else {"token": token}
    kc = {"apiVersion": "v1", "kind": "Config",
          "clusters": [{"name": "kubernetes", "cluster": {"server": server,
                                                          "certificate-authority-data": b64file(rootp(PKI + "/ca.crt"))}}],
          "users": [{"name": user, "user": u}],
          "contexts": [{"name": f"{user}@kubernetes", "context": {"cluster": "kubernetes", "user": user}}],
          "current-context": f"{user}@kubernetes"}
    p = rootp(path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p + ".tmp", "w") as f:
        json.dump(kc, f, indent=1)  # JSON is YAML
    os.chmod(p + ".tmp", 0o600)
    os.replace(p + ".tmp", p)


class Api:
    """A client of the apiserver stand-in from a kubeconfig (or explicit server/CA/credentials)."""

    def __init__(self, kubeconfig=None, server=None, ca_pem=None, token=None, verify=True):
        self.token, self.cert = token, None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if kubeconfig:
            import yaml
            kc = yaml.safe_load(open(rootp(kubeconfig)))
            cl, us = kc["clusters"][0]["cluster"], kc["users"][0]["user"]
            server, ca_pem = cl["server"], base64.b64decode(cl["certificate-authority-data"]).decode()
            if "client-certificate-data" in us:
                d = tempfile.mkdtemp(prefix="khd-kc")
                for n in ("certificate", "key"):
                    open(f"{d}/{n}", "wb").write(base64.b64decode(us[f"client-{n}-data"]))
                ctx.load_cert_chain(f"{d}/certificate", f"{d}/key")
            self.token = us.get("token", token)
        if verify:
            ctx.load_verify_locations(cadata=ca_pem)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.server, self.ctx = server.rstrip("/"), ctx

    def call(self, method, path, body=None, timeout=3):
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                data = r.read()
                if r.headers.get("Content-Type", "").startswith("application/json"):
                    return r.status, json.loads(data or b"null")
                return r.status, data.decode()
        except urllib.error.HTTPError as e:
            return e.code, None


def wait(what, fn, secs):
    t = time.time()
    last = None
    while time.time() - t < secs:
        try:
            if fn():
                return
        except Exception as e:  # noqa: BLE001 (retried until the deadline)
            last = e
        time.sleep(0.5)
    raise SystemExit(f"demo STAND-IN on {NODE}: timed out after {secs}s waiting for {what} ({last})")
