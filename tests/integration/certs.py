"""Test PKI for the TLS entitlement tests (SPEC section 6), built with the
`openssl` command line tool and Python's standard library only.

- TestPKI: a throwaway CA (EC P-256), a server certificate for 127.0.0.1 and
  client certificates signed by the CA with `openssl ca` (which, unlike
  OpenSSL 3.0's `openssl x509`, takes explicit -startdate/-enddate, so
  expired certificates need no clock tricks), plus self-signed "forged" ones.
- Red Hat entitlement extensions (OIDs under 1.3.6.1.4.1.2312.9) are written
  as `OID=DER:<hex>` lines of an extensions section, so no value ever meets
  the openssl config parser's quoting or `$variable` expansion (`$releasever`
  in a content path stays literal).
- encode_path_tree(): Candlepin's v3 content path tree (extension .7), a
  port of the independent C++ test encoder tests/unit/entitlement_test_helpers.cpp
  (itself written from the format description, not from the parser).

Format facts of the v3 path tree, as the encoder writes them:
- payload = zlib(word list) + node count + Huffman-coded edge bit stream.
- Word list: every distinct edge word followed by NUL; the empty piece after
  the last NUL is the end-of-node marker. Word i (0-based, marker included,
  marker last) has Huffman weight i+1. Candlepin puts the rarest words first
  (ties in lexicographic order here); any order decodes the same.
- Node count: one byte if < 128, else 0x80+N then N big-endian bytes.
- Node 0 is the root; nodes 1..count-1 get Huffman weights 1..count-1 (the
  root is never referenced). For each node in order: (word code, node code)
  per edge, then the end-of-node word code. Bits MSB first, zero-padded.
- Huffman trees merge the two lightest nodes, lighter (or, on equal weight,
  older) on the left ("0"); merged nodes are younger than all leaves.
- Every content path ends in one shared childless node; a path that is a
  prefix of another gets its own edge. With only two nodes, Candlepin adds a
  filler node so the node code has two symbols.
"""

import datetime
import heapq
import os
import shutil
import subprocess
import tempfile
import zlib

REDHAT_OID = "1.3.6.1.4.1.2312.9"
ORDER_OID = REDHAT_OID + ".4.1"
VERSION_OID = REDHAT_OID + ".6"
PATH_TREE_OID = REDHAT_OID + ".7"
PRODUCT_OID = REDHAT_OID + ".8"

# ---------------------------------------------------------------- DER

TAG_UTF8STRING = 0x0C
TAG_OCTET_STRING = 0x04


def der_length(n):
    if n < 128:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der(tag, value):
    """A primitive DER TLV."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return bytes([tag]) + der_length(len(value)) + value


def utf8string(text):
    return der(TAG_UTF8STRING, text)


def octet_string(data):
    return der(TAG_OCTET_STRING, data)


# ---------------------------------------------------------------- v3 path tree

def huffman_codes(n):
    """Codes ("0"/"1" strings) for symbols 0..n-1 with weights 1..n."""
    if n < 2:
        raise ValueError("a Huffman code needs two symbols")
    children = {}  # inner node id -> (left, right); ids below n are leaves
    heap = [(i + 1, i, i) for i in range(n)]  # (weight, age, node)
    heapq.heapify(heap)
    age = n
    next_node = n
    while len(heap) > 1:
        wa, _, a = heapq.heappop(heap)
        wb, _, b = heapq.heappop(heap)
        children[next_node] = (a, b)
        heapq.heappush(heap, (wa + wb, age, next_node))
        age += 1
        next_node += 1
    codes = [None] * n
    todo = [(heap[0][2], "")]
    while todo:
        node, prefix = todo.pop()
        if node < n:
            codes[node] = prefix
            continue
        left, right = children[node]
        todo.append((left, prefix + "0"))
        todo.append((right, prefix + "1"))
    return codes


def path_graph(paths):
    """Candlepin's node graph for content paths: a list of nodes, each a
    list of (word, child) edges; node 0 is the root."""
    nodes = [[]]
    end_node = 0  # 0: not made yet (no edge ever points at the root)
    for path in paths:
        segments = [s for s in path.split("/") if s]
        at = 0
        for i, segment in enumerate(segments):
            last = i + 1 == len(segments)
            found = None
            for word, child in nodes[at]:
                if word == segment and (child == end_node) == last:
                    found = child
                    break
            if found is not None:
                at = found
                continue
            if last:
                if end_node == 0:
                    nodes.append([])
                    end_node = len(nodes) - 1
                child = end_node
            else:
                nodes.append([])
                child = len(nodes) - 1
            nodes[at].append((segment, child))
            at = child
    return nodes


def encode_path_graph(graph):
    """The .7 payload (before its DER OCTET STRING wrapping) of a node graph."""
    nodes = [list(edges) for edges in graph]
    if len(nodes) == 2:
        nodes.append([])  # Candlepin's filler node
    if len(nodes) < 3:
        raise ValueError("a path tree needs a root and an end node")
    frequency = {}
    for edges in nodes:
        for word, child in edges:
            if not word:
                raise ValueError("empty words are the end-of-node marker")
            if child <= 0 or child >= len(nodes):
                raise ValueError("bad child reference")
            frequency[word] = frequency.get(word, 0) + 1
    words = sorted(sorted(frequency), key=lambda w: frequency[w])  # rarest first
    index = {w: i for i, w in enumerate(words)}
    word_list = b"".join(w.encode("utf-8") + b"\0" for w in words)
    word_codes = huffman_codes(len(words) + 1)
    end_code = word_codes[-1]
    node_codes = huffman_codes(len(nodes) - 1)

    payload = zlib.compress(word_list, 9)
    count = len(nodes)
    if count < 128:
        payload += bytes([count])
    else:
        raw = count.to_bytes((count.bit_length() + 7) // 8, "big")
        payload += bytes([0x80 + len(raw)]) + raw
    bits = []
    for edges in nodes:
        for word, child in edges:
            bits.append(word_codes[index[word]])
            bits.append(node_codes[child - 1])
        bits.append(end_code)
    bits = "".join(bits)
    bits += "0" * (-len(bits) % 8)
    payload += bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    return payload


def encode_path_tree(paths):
    return encode_path_graph(path_graph(paths))


# ---------------------------------------------------------------- extensions

def v1_extensions(download_paths, order="Test Order"):
    """[(oid, DER value)] of a v1 entitlement certificate: no version
    extension (1.0), an order name, one content set per download path."""
    exts = [(ORDER_OID, utf8string(order))]
    for i, path in enumerate(download_paths):
        content = "%s.2.%d.1" % (REDHAT_OID, 1000 + i)
        exts.append((content, utf8string("yum")))
        exts.append((content + ".1", utf8string("content %d" % i)))
        exts.append((content + ".6", utf8string(path)))
    return exts


def v3_extensions(paths=None, payload=None, version="3.4"):
    """[(oid, DER value)] of a v3 entitlement certificate: the version, the
    path tree of `paths` (or a ready `payload`) as an OCTET STRING, a product."""
    if payload is None:
        payload = encode_path_tree(paths)
    exts = []
    if version is not None:
        exts.append((VERSION_OID, utf8string(version)))
    exts.append((PATH_TREE_OID, octet_string(payload)))
    exts.append((PRODUCT_OID, utf8string("Basic")))
    return exts


def extension_lines(extensions):
    return "".join("%s = DER:%s\n" % (oid, value.hex().upper()) for oid, value in extensions)


# ---------------------------------------------------------------- the PKI

def openssl_time(when):
    """GeneralizedTime for `openssl ca -startdate/-enddate` from a datetime
    or unix seconds."""
    if not isinstance(when, datetime.datetime):
        when = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


CLIENT_BASE_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""

REQ_CONFIG = """[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
"""


class TestPKI:
    """A CA, a server certificate for 127.0.0.1 and client certificates,
    all in one temp dir (world-readable: httpd children may run as
    www-data). Every client certificate shares `client_key`."""

    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="crane-pki-")
        os.chmod(self.dir, 0o755)
        self._serial = 0x1000
        self.ca_key = self.path("ca.key")
        self.ca_cert = self.path("ca.pem")
        self.client_key = self.path("client.key")
        self.server_key = self.path("server.key")
        self.server_cert = self.path("server.pem")
        self._write("req.cnf", REQ_CONFIG)
        for key in (self.ca_key, self.client_key, self.server_key):
            self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-out", key)
        self._write("ca_req.cnf", REQ_CONFIG + "[ ext ]\nbasicConstraints = critical, CA:TRUE\n"
                                               "keyUsage = critical, keyCertSign, cRLSign\n"
                                               "subjectKeyIdentifier = hash\n")
        self._openssl("req", "-new", "-x509", "-config", self.path("ca_req.cnf"), "-key", self.ca_key,
                      "-subj", "/O=mod_crane tests/CN=crane test entitlement CA", "-days", "3650",
                      "-extensions", "ext", "-out", self.ca_cert)
        os.makedirs(self.path("newcerts"))
        self._write("index.txt", "")
        self._write("ca.cnf", """[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
certificate = {ca_cert}
private_key = {ca_key}
serial = {dir}/serial
default_md = sha256
default_days = 365
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
organizationName = optional
""".format(dir=self.dir, ca_cert=self.ca_cert, ca_key=self.ca_key))
        self.sign("server", self.server_key, "/CN=127.0.0.1",
                  "basicConstraints = critical, CA:FALSE\n"
                  "keyUsage = critical, digitalSignature, keyEncipherment\n"
                  "extendedKeyUsage = serverAuth\n"
                  "subjectAltName = IP:127.0.0.1, DNS:localhost\n",
                  out=self.server_cert)
        for name in os.listdir(self.dir):
            os.chmod(self.path(name), 0o755 if os.path.isdir(self.path(name)) else 0o644)

    # -- helpers

    def path(self, name):
        return os.path.join(self.dir, name)

    def _write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def _openssl(self, *args):
        p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("openssl %s failed (%d):\n%s%s" % (args[0], p.returncode, p.stdout, p.stderr))
        return p.stdout

    # -- certificates

    def sign(self, name, key, subject, ext_text, not_before=None, not_after=None, out=None):
        """A certificate for `key` signed by the CA with the extensions in
        ext_text (lines of an openssl extensions section). Dates are
        datetimes or unix seconds; default from an hour ago for a year."""
        now = datetime.datetime.now(datetime.timezone.utc)
        not_before = now - datetime.timedelta(hours=1) if not_before is None else not_before
        not_after = now + datetime.timedelta(days=365) if not_after is None else not_after
        self._serial += 1
        with open(self.path("serial"), "w") as f:
            f.write("%X\n" % self._serial)
        csr = self.path(name + ".csr")
        self._openssl("req", "-new", "-config", self.path("req.cnf"), "-key", key, "-subj", subject, "-out", csr)
        ext = self._write(name + ".ext", "[ ext ]\n" + ext_text)
        out = out or self.path(name + ".pem")
        self._openssl("ca", "-batch", "-config", self.path("ca.cnf"), "-in", csr, "-out", out, "-notext",
                      "-startdate", openssl_time(not_before), "-enddate", openssl_time(not_after),
                      "-extfile", ext, "-extensions", "ext")
        os.chmod(out, 0o644)
        return out

    def client(self, name, extensions=(), **dates):
        """A client certificate (shared client key) signed by the CA, with
        extra [(oid, DER value)] extensions."""
        return self.sign(name, self.client_key, "/O=mod_crane tests/CN=" + name,
                         CLIENT_BASE_EXTENSIONS + extension_lines(extensions), **dates)

    def v1(self, name, download_paths, **dates):
        return self.client(name, v1_extensions(download_paths), **dates)

    def v3(self, name, paths=None, payload=None, version="3.4", **dates):
        return self.client(name, v3_extensions(paths, payload, version), **dates)

    def self_signed(self, name, extensions=(), days=365):
        """A self-signed client certificate nobody vouches for (the
        shared client key signs itself)."""
        cnf = self._write(name + ".cnf", REQ_CONFIG + "[ ext ]\n" + CLIENT_BASE_EXTENSIONS +
                          extension_lines(extensions))
        out = self.path(name + ".pem")
        self._openssl("req", "-new", "-x509", "-config", cnf, "-key", self.client_key,
                      "-subj", "/O=mod_crane tests/CN=" + name, "-days", str(days), "-set_serial", "4242",
                      "-extensions", "ext", "-out", out)
        os.chmod(out, 0o644)
        return out

    def text(self, cert):
        """`openssl x509 -text` of a certificate, for diagnostics."""
        return self._openssl("x509", "-in", cert, "-noout", "-text")

    def verify(self, cert):
        """(ok, output) of `openssl verify` against the CA."""
        p = subprocess.run(["openssl", "verify", "-CAfile", self.ca_cert, "-purpose", "sslclient", cert],
                           capture_output=True, text=True)
        return p.returncode == 0, p.stdout + p.stderr

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
