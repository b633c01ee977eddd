#!/usr/bin/env python3
"""Generate the demo's local "upstream": small container images pushed under their real names to a local registry,
and yum repositories of small generated RPMs named like the real ones with their real dependency shape.

This machine has no internet, so the demo cannot pull registry.k8s.io or pkgs.k8s.io; everything kubeha does with
this upstream (registry API v2, manifest lists, digests, repodata, dependency closure) is the same as with the real
one. Usage:
  upstream.py images --registry 127.0.0.1:PORT --list images.txt [--lists] [--k8s-bin DIR --cache DIR]

With --k8s-bin (the binaries `make k8s` builds from k8s.io/kubernetes and etcd), the control-plane images are REAL:
kube-apiserver, kube-controller-manager, kube-scheduler and kube-proxy carry their binary at /usr/local/bin/NAME with
kube-log-runner as /go-runner (the ENTRYPOINT of Kubernetes' build/server-image/Dockerfile), etcd carries etcd and
etcdctl at /usr/local/bin, pause is build/pause/linux/pause.c at /pause (ENTRYPOINT ["/pause"], USER 65535). Images
that are not built from Kubernetes' own source (coredns, calico) stay generated busybox STAND-INS; with
--cni-plugins, calico/cni is the CNI STAND-IN: busybox plus the reference CNI plugins (bridge, host-local, loopback,
portmap from Debian's containernetworking-plugins) and /install-cni.sh, which installs them and a bridge network
config on the node the way calico's install-cni init container installs calico's (nodes become Ready; pods on one
node reach each other, across nodes they do not: no routing between the nodes' bridges).
  upstream.py rpms --spec rpms.json --out DIR --work DIR
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

BUSYBOX = "/bin/busybox"


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tar_bytes(entries):
    """entries: list of (path, bytes|None for dir, mode, symlink target or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, data, mode, link in entries:
            ti = tarfile.TarInfo(path)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            ti.mode = mode
            if link is not None:
                ti.type = tarfile.SYMTYPE
                ti.linkname = link
                t.addfile(ti)
            elif data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gz(b):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as g:
        g.write(b)
    return out.getvalue()


def base_layer():
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", None, 0o755, None), ("bin/busybox", bb, 0o755, None)]
    for cmd in ("sh", "echo", "cat", "ls", "sleep", "true"):
        entries.append((f"bin/{cmd}", None, 0o777, "busybox"))
    entries += [("etc", None, 0o755, None), ("tmp", None, 0o1777, None)]
    return tar_bytes(entries)


class Registry:
    def __init__(self, addr):
        self.base = f"http://{addr}"

    def _req(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url if url.startswith("http") else self.base + url, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        return urllib.request.urlopen(req, timeout=30)

    def has_blob(self, repo, digest):
        try:
            self._req("HEAD", f"/v2/{repo}/blobs/{digest}")
            return True
        except urllib.error.HTTPError:
            return False

    @staticmethod
    def _retry(what, fn):
        # A loaded CI machine's registry has reset a monolithic upload mid-body (ConnectionResetError): the upload
        # is restarted from its POST, as a registry client does; HTTP errors (4xx/5xx) are answers, not retried.
        for attempt in range(1, 6):
            try:
                return fn()
            except urllib.error.HTTPError:
                raise
            except (ConnectionError, urllib.error.URLError, TimeoutError) as e:
                if attempt == 5:
                    raise SystemExit(f"upstream.py: {what}: {e} (5 attempts)")
                print(f"  {what}: {e}; attempt {attempt + 1} in {attempt}s", file=sys.stderr)
                time.sleep(attempt)

    def push_blob(self, repo, data):
        d = sha(data)

        def upload():
            if self.has_blob(repo, d):
                return d
            r = self._req("POST", f"/v2/{repo}/blobs/uploads/")
            loc = r.headers["Location"]
            sep = "&" if "?" in loc else "?"
            self._req("PUT", f"{loc}{sep}digest={d}", data=data, headers={"Content-Type": "application/octet-stream"})
            return d
        return self._retry(f"blob {d[:19]} of {repo} ({len(data)} bytes)", upload)

    def push_manifest(self, repo, ref, body, media_type):
        self._retry(f"manifest {repo}:{ref}", lambda: self._req(
            "PUT", f"/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media_type}))


def image_manifest(reg, repo, ref_name, base_gz, base_tar, arch="amd64"):
    extra_tar = tar_bytes([("etc/kubeha-image", f"{ref_name} {arch}\n".encode(), 0o644, None)])
    extra_gz = gz(extra_tar)
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/cat", "/etc/kubeha-image"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(base_tar), sha(extra_tar)]},
        "history": [{"created_by": "kubeha demo upstream: busybox base"}, {"created_by": "kubeha demo: " + ref_name}],
    }, sort_keys=True).encode()
    layers = []
    for blob in (base_gz, extra_gz):
        layers.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(blob),
                       "digest": reg.push_blob(repo, blob)})
    cfg = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
           "digest": reg.push_blob(repo, config)}
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": cfg, "layers": layers}).encode()
    return m


PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Image repository basename -> (files from --k8s-bin placed at these paths, image config).
REAL = {
    "kube-apiserver": ({"kube-apiserver": "usr/local/bin/kube-apiserver", "kube-log-runner": "go-runner"},
                       {"Entrypoint": ["/go-runner"], "Env": [PATH_ENV]}),
    "kube-controller-manager": ({"kube-controller-manager": "usr/local/bin/kube-controller-manager",
                                 "kube-log-runner": "go-runner"}, {"Entrypoint": ["/go-runner"], "Env": [PATH_ENV]}),
    "kube-scheduler": ({"kube-scheduler": "usr/local/bin/kube-scheduler", "kube-log-runner": "go-runner"},
                       {"Entrypoint": ["/go-runner"], "Env": [PATH_ENV]}),
    "kube-proxy": ({"kube-proxy": "usr/local/bin/kube-proxy", "kube-log-runner": "go-runner"},
                   {"Entrypoint": ["/go-runner"], "Env": [PATH_ENV]}),
    "etcd": ({"etcd": "usr/local/bin/etcd", "etcdctl": "usr/local/bin/etcdctl"}, {"Env": [PATH_ENV]}),
    "pause": ({"pause": "pause"}, {"Entrypoint": ["/pause"], "User": "65535:65535", "Env": [PATH_ENV]}),
}


def real_layer(files, k8s_bin, cache):
    """One layer with the real binaries (distroless-like: no shell), gzipped; cached by the binaries' hashes."""
    key = hashlib.sha256()
    for src, dst in sorted(files.items()):
        key.update(f"{src}>{dst}\0".encode())
        with open(os.path.join(k8s_bin, src), "rb") as f:
            key.update(hashlib.sha256(f.read()).digest())
    key = key.hexdigest()[:24]
    cdir = os.path.join(cache, key)
    if os.path.exists(os.path.join(cdir, "layer.tar.gz")):
        return open(os.path.join(cdir, "layer.tar"), "rb").read(), open(os.path.join(cdir, "layer.tar.gz"), "rb").read()
    entries = [("etc", None, 0o755, None), ("tmp", None, 0o1777, None),
               ("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
                0o644, None),
               ("etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644, None)]
    dirs = set()
    for src, dst in sorted(files.items()):
        parts = dst.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs and d not in ("etc", "tmp"):
                dirs.add(d)
                entries.append((d, None, 0o755, None))
        with open(os.path.join(k8s_bin, src), "rb") as f:
            entries.append((dst, f.read(), 0o755, None))
    raw = tar_bytes(entries)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=1) as g:
        g.write(raw)
    os.makedirs(cdir, exist_ok=True)
    open(os.path.join(cdir, "layer.tar"), "wb").write(raw)
    open(os.path.join(cdir, "layer.tar.gz"), "wb").write(out.getvalue())
    return raw, out.getvalue()


INSTALL_CNI = """#!/bin/sh
# kubeha lab CNI STAND-IN (calico/cni's install-cni role): the reference plugins and a bridge network config.
set -e
o=${HOST_IP##*.}
busybox mkdir -p /host/opt/cni/bin /host/etc/cni/net.d
for p in bridge host-local loopback portmap; do
  busybox cp /cni/$p /host/opt/cni/bin/$p.tmp
  busybox mv /host/opt/cni/bin/$p.tmp /host/opt/cni/bin/$p
done
cat > /host/etc/cni/net.d/.10-kubeha-lab.conflist <<EOF
{"cniVersion": "0.4.0", "name": "k8s-pod-network", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_NET.$o.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
busybox mv /host/etc/cni/net.d/.10-kubeha-lab.conflist /host/etc/cni/net.d/10-kubeha-lab.conflist
echo "installed the CNI stand-in: $POD_NET.$o.0/24 on $HOST_IP"
"""


def cni_manifest(reg, repo, base_gz, base_tar, plugins):
    entries = [("cni", None, 0o755, None), ("install-cni.sh", INSTALL_CNI.encode(), 0o755, None)]
    for p in ("bridge", "host-local", "loopback", "portmap"):
        with open(os.path.join(plugins, p), "rb") as f:
            entries.append((f"cni/{p}", f.read(), 0o755, None))
    extra_tar = tar_bytes(entries)
    extra_gz = gz(extra_tar)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh", "/install-cni.sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(base_tar), sha(extra_tar)]},
        "history": [{"created_by": "kubeha demo upstream: busybox base"},
                    {"created_by": "kubeha lab: CNI stand-in, reference plugins + install-cni.sh"}],
    }, sort_keys=True).encode()
    layers = [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(b),
               "digest": reg.push_blob(repo, b)} for b in (base_gz, extra_gz)]
    cfg = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
           "digest": reg.push_blob(repo, config)}
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": cfg, "layers": layers}).encode()


def real_manifest(reg, repo, ref, raw, blob, conf):
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": conf,
        "rootfs": {"type": "layers", "diff_ids": [sha(raw)]},
        "history": [{"created_by": f"kubeha lab: {ref} built from the binaries of `make k8s`"}],
    }, sort_keys=True).encode()
    layers = [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(blob),
               "digest": reg.push_blob(repo, blob)}]
    cfg = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
           "digest": reg.push_blob(repo, config)}
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": cfg, "layers": layers}).encode()


def cmd_images(a):
    reg = Registry(a.registry)
    base_tar = base_layer()
    base_gz = gz(base_tar)
    refs = [l.strip() for l in open(a.list) if l.strip() and not l.startswith("#")]
    for ref in refs:
        name, tag = ref.rsplit(":", 1)
        # Stored under the original host as a path prefix: the profile's mirror maps registry.k8s.io/x -> PORT/registry.k8s.io/x.
        repo = name
        ml = "application/vnd.docker.distribution.manifest.v2+json"
        real = REAL.get(name.rsplit("/", 1)[-1]) if a.k8s_bin else None
        cni = bool(a.cni_plugins) and name.endswith("calico/cni")
        if real:
            raw, blob = real_layer(real[0], a.k8s_bin, a.cache)
            amd = real_manifest(reg, repo, ref, raw, blob, real[1])
        elif cni:
            amd = cni_manifest(reg, repo, base_gz, base_tar, a.cni_plugins)
        else:
            amd = image_manifest(reg, repo, ref, base_gz, base_tar, "amd64")
        if a.lists:
            # Real kubeadm images are manifest lists: push both platforms and a list, so the client must pick amd64.
            arm = image_manifest(reg, repo, ref, base_gz, base_tar, "arm64")
            reg.push_manifest(repo, sha(amd), amd, ml)
            reg.push_manifest(repo, sha(arm), arm, ml)
            lst = json.dumps({"schemaVersion": 2,
                              "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                              "manifests": [
                                  {"mediaType": ml, "size": len(amd), "digest": sha(amd),
                                   "platform": {"architecture": "amd64", "os": "linux"}},
                                  {"mediaType": ml, "size": len(arm), "digest": sha(arm),
                                   "platform": {"architecture": "arm64", "os": "linux"}}]}).encode()
            reg.push_manifest(repo, tag, lst, "application/vnd.docker.distribution.manifest.list.v2+json")
        else:
            reg.push_manifest(repo, tag, amd, ml)
        print(f"  pushed {ref}" + (" (real, from --k8s-bin)" if real else " (CNI stand-in)" if cni else " (generated stand-in)"))


SPEC = """%global debug_package %{{nil}}
%global __os_install_post %{{nil}}
%define _build_id_links none
Name: {name}
{epoch}Version: {version}
Release: {release}
Summary: kubeha demo stand-in for {name}
License: Apache-2.0
BuildArch: {arch}
{deps}
%description
Generated by kubeha's demo upstream: named like the real {name}, with its dependency shape.
%install
mkdir -p %{{buildroot}}/usr/share/kubeha-demo
echo "{name} {version}-{release}" > %{{buildroot}}/usr/share/kubeha-demo/{name}
{install}
%files
/usr/share/kubeha-demo/{name}
{files}
"""


def cmd_rpms(a):
    text = open(a.spec).read().replace("@K8S@", a.kube_version)
    major, minor, patch = a.kube_version.split(".")
    text = text.replace("@K8S_PREV@", f"{major}.{int(minor) - 1}.0")
    spec = json.loads(text)
    top = os.path.abspath(a.work)
    for repo, pkgs in spec.items():
        out = os.path.join(os.path.abspath(a.out), repo)
        os.makedirs(out, exist_ok=True)
        for p in pkgs:
            deps = "\n".join([f"Requires: {r}" for r in p.get("requires", [])] +
                             [f"Provides: {r}" for r in p.get("provides", [])] +
                             [f"Conflicts: {r}" for r in p.get("conflicts", [])])
            install, files = [], []
            for f in p.get("files", []):
                install.append(f"mkdir -p %{{buildroot}}{os.path.dirname(f)} && echo '#!/bin/sh' > %{{buildroot}}{f} && chmod 755 %{{buildroot}}{f}")
                files.append(f)
            text = SPEC.format(name=p["name"], version=p["version"], release=p.get("release", "1"),
                               epoch=f"Epoch: {p['epoch']}\n" if "epoch" in p else "",
                               arch=p.get("arch", "x86_64"), deps=deps, install="\n".join(install),
                               files="\n".join(files))
            sp = os.path.join(top, "SPECS", f"{p['name']}-{p['version']}.spec")
            os.makedirs(os.path.dirname(sp), exist_ok=True)
            open(sp, "w").write(text)
            r = subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", "--target",
                                p.get("arch", "x86_64"), sp], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"rpmbuild {p['name']} failed: {r.stderr}")
        for root, _, names in os.walk(os.path.join(top, "RPMS")):
            for n in names:
                shutil.move(os.path.join(root, n), os.path.join(out, n))
        subprocess.run(["createrepo_c", "-q", out], check=True)
        print(f"  repo {repo}: {len(pkgs)} packages")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("images")
    i.add_argument("--registry", required=True)
    i.add_argument("--list", required=True)
    i.add_argument("--lists", action="store_true", help="push manifest lists (amd64 + arm64)")
    i.add_argument("--k8s-bin", help="directory of the binaries `make k8s` built: control-plane images become real")
    i.add_argument("--cni-plugins", help="directory of the reference CNI plugins: calico/cni becomes the CNI stand-in")
    i.add_argument("--cache", default="/tmp/kubeha-image-layers", help="cache of the real images' layers")
    r = sub.add_parser("rpms")
    r.add_argument("--spec", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--kube-version", required=True, help="the Kubernetes release the kube* packages carry")
    a = ap.parse_args()
    {"images": cmd_images, "rpms": cmd_rpms}[a.cmd](a)


if __name__ == "__main__":
    main()
