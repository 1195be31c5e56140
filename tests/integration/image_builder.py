"""Builds tiny Docker schema2 images with the Python standard library only,
in the layout `skopeo copy --format v2s2 ... dir:PATH` writes:

    PATH/version                       "Directory Transport Version: 1.1\\n"
    PATH/manifest.json                 the image manifest (or the manifest list)
    PATH/<hex>                         every blob (config, layers), named by its sha256 hex
    PATH/<hex>.manifest.json           with a manifest list: each instance's manifest

Everything is deterministic (fixed mtimes, no gzip timestamp), so the same
arguments give the same digests.

As a script it writes the demo bundle:

    python3 tests/integration/image_builder.py demo/image
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

MEDIA_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_S2 = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DIR_VERSION = b"Directory Transport Version: 1.1\n"
CREATED = "2020-01-01T00:00:00Z"
MTIME = 1577836800


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    """Compact JSON as the Go tools write it (keys in the given order)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def layer_tarball(files):
    """A gzipped tar of `files` ({path: bytes}); returns (gz bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = MTIME
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(tar_bytes)
    return gz.getvalue(), sha256(tar_bytes)


class Image:
    """One single-architecture image: its blobs and its schema2 manifest."""

    def __init__(self, arch="amd64", os_name="linux", variant=None, files=None, label=None):
        self.arch = arch
        self.os = os_name
        self.variant = variant
        if files is None:
            files = {"hello.txt": ("hello from a tiny %s image%s\n" % (
                arch, "" if label is None else " (%s)" % label)).encode()}
        self.layer, diff_id = layer_tarball(files)
        self.layer_digest = sha256(self.layer)
        config = {
            "architecture": arch,
            "os": os_name,
            "created": CREATED,
            "config": {"Cmd": ["/hello.txt"], "Labels": {"built-by": "mod_crane image_builder"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": CREATED, "created_by": "image_builder.py"}],
        }
        if variant:
            config["variant"] = variant
        if label is not None:
            config["config"]["Labels"]["test-label"] = label
        self.config = canonical_json(config)
        self.config_digest = sha256(self.config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_S2,
            "config": {"mediaType": MEDIA_CONFIG, "size": len(self.config), "digest": self.config_digest},
            "layers": [{"mediaType": MEDIA_LAYER, "size": len(self.layer), "digest": self.layer_digest}],
        }
        self.manifest = json.dumps(manifest, indent=3).encode()
        self.digest = sha256(self.manifest)

    @property
    def blobs(self):
        return {self.config_digest: self.config, self.layer_digest: self.layer}

    def platform(self):
        p = {"architecture": self.arch, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p


class ManifestList:
    """A manifest list over several Images."""

    def __init__(self, images):
        self.images = list(images)
        body = {
            "schemaVersion": 2,
            "mediaType": MEDIA_LIST,
            "manifests": [{"mediaType": MEDIA_S2, "size": len(i.manifest), "digest": i.digest,
                           "platform": i.platform()} for i in self.images],
        }
        self.manifest = json.dumps(body, indent=3).encode()
        self.digest = sha256(self.manifest)

    @property
    def blobs(self):
        out = {}
        for i in self.images:
            out.update(i.blobs)
        return out

    def image(self, arch):
        return next(i for i in self.images if i.arch == arch)


def multi_arch(label=None):
    """amd64 + arm64/v8, as a ManifestList."""
    return ManifestList([Image("amd64", label=label), Image("arm64", variant="v8", label=label)])


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)


def write_dir(thing, path):
    """Writes an Image or ManifestList to PATH in skopeo's dir: layout."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    _write(os.path.join(path, "version"), DIR_VERSION)
    _write(os.path.join(path, "manifest.json"), thing.manifest)
    if isinstance(thing, ManifestList):
        for image in thing.images:
            _write(os.path.join(path, image.digest[len("sha256:"):] + ".manifest.json"), image.manifest)
    for digest, data in sorted(thing.blobs.items()):
        _write(os.path.join(path, digest[len("sha256:"):]), data)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a tiny image in skopeo's dir: layout.")
    ap.add_argument("path")
    ap.add_argument("--single", metavar="ARCH", help="one image of this architecture instead of amd64+arm64")
    args = ap.parse_args(argv)
    thing = Image(args.single) if args.single else multi_arch()
    write_dir(thing, args.path)
    print(thing.digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
