"""The checks of Deploy/kubernetes/check that the schemas cannot make: what the manifests refer to, and whether
ora-server's own loader accepts the configuration each pod would start with.

    check-manifests.py list DIR
        Prints the manifests kustomization.yaml lists, one a line, after checking that it lists every *.yaml
        file of DIR and only those.
    check-manifests.py references DIR --ora-server PATH
        Checks the references between the manifests, then builds, for every container that runs ora-server, the
        files its mounts would give it, and runs `ora-server check-config` on its configuration file there.

Placeholders ("REPLACE-ME …") are replaced for the check by values of the right kind, each named in the output:
a password, a certificate and an Ed25519 key made with openssl for this run. Any other mistake fails with a message
naming the manifest and what is wrong.
"""

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

PLACEHOLDER = "REPLACE-ME"
CLUSTER_SCOPED = {"Namespace"}
WORKLOADS = {"Deployment", "Job"}


class CheckFailed(Exception):
    pass


def fail(message):
    raise CheckFailed(message)


# MARK: Reading the manifests


class Manifest:
    """One object and where it came from."""

    def __init__(self, file, document, node):
        self.file = file
        self.document = document
        self.node = node
        self.kind = document.get("kind")
        self.name = document.get("metadata", {}).get("name")
        self.namespace = document.get("metadata", {}).get("namespace")

    def __str__(self):
        return f"{self.kind} {self.name} ({os.path.basename(self.file)})"


def listed_files(directory):
    path = os.path.join(directory, "kustomization.yaml")
    with open(path) as file:
        kustomization = yaml.safe_load(file)
    listed = kustomization.get("resources") or []
    present = sorted(
        name for name in os.listdir(directory) if name.endswith(".yaml") and name != "kustomization.yaml")
    missing = [name for name in listed if not os.path.isfile(os.path.join(directory, name))]
    if missing:
        fail(f"kustomization.yaml lists {', '.join(missing)}, which does not exist")
    unlisted = [name for name in present if name not in listed]
    if unlisted:
        fail(f"kustomization.yaml does not list {', '.join(unlisted)}: add it to resources, or remove the file")
    return [os.path.join(directory, name) for name in listed]


def read_manifests(files):
    manifests = []
    for path in files:
        with open(path) as file:
            text = file.read()
        documents = list(yaml.safe_load_all(text))
        nodes = list(yaml.compose_all(text))
        for document, node in zip(documents, nodes):
            if document:
                manifests.append(Manifest(path, document, node))
    return manifests


def find(manifests, kind, name, namespace):
    for manifest in manifests:
        if manifest.kind == kind and manifest.name == name and manifest.namespace == namespace:
            return manifest
    return None


def object_data(manifest):
    """The keys of a ConfigMap or Secret and their text."""
    document = manifest.document
    data = dict(document.get("data") or {})
    if manifest.kind == "Secret":
        data = {key: base64.b64decode(value).decode() for key, value in data.items()}
        data.update(document.get("stringData") or {})
    return data


def block_position(manifest, key):
    """Where the text of `key` in a ConfigMap's or Secret's data starts: (its first line, 1-based; its indentation)."""
    for key_node, value_node in manifest.node.value:
        if key_node.value not in ("data", "stringData"):
            continue
        for entry_key, entry_value in value_node.value:
            if entry_key.value == key:
                with open(manifest.file) as file:
                    lines = file.read().split("\n")
                first = entry_value.start_mark.line + 1
                text = lines[first] if first < len(lines) else ""
                return first + 1, len(text) - len(text.lstrip(" "))
    return 1, 0


# MARK: Pods


def pod_templates(manifests):
    for manifest in manifests:
        if manifest.kind in WORKLOADS:
            yield manifest, manifest.document["spec"]["template"]


def labels_match(selector, labels):
    return all(labels.get(key) == value for key, value in (selector or {}).items())


def selected_pods(manifests, selector, namespace):
    return [
        (workload, template)
        for workload, template in pod_templates(manifests)
        if workload.namespace == namespace and labels_match(selector, template["metadata"].get("labels") or {})
    ]


def port_names(template):
    return {
        port["name"]: port["containerPort"]
        for container in template["spec"]["containers"]
        for port in container.get("ports") or []
        if "name" in port
    }


class MountedFile:
    """A file a mount gives a container: its text, and the key of the ConfigMap or Secret it comes from."""

    def __init__(self, content, source, key):
        self.content = content
        self.source = source
        self.key = key

    def __str__(self):
        return f"{self.source.kind} {self.source.name}, key {self.key}"


def container_files(manifests, workload, template, container):
    """The files the container's mounts give it (path → MountedFile) and its writable directories."""
    volumes = {volume["name"]: volume for volume in template["spec"].get("volumes") or []}
    files = {}
    writable = set()
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            fail(f"{workload}: container {container['name']} mounts {mount['name']}, which is not a volume of the pod")
        if "emptyDir" in volume:
            writable.add(mount["mountPath"].rstrip("/"))
            continue
        if "configMap" in volume:
            kind, name = "ConfigMap", volume["configMap"]["name"]
            items = volume["configMap"].get("items")
        elif "secret" in volume:
            kind, name = "Secret", volume["secret"]["secretName"]
            items = volume["secret"].get("items")
        else:
            continue
        source = find(manifests, kind, name, workload.namespace)
        if source is None:
            fail(f"{workload}: volume {volume['name']} names {kind} {name}, which no manifest defines")
        data = object_data(source)
        for item in items or []:
            if item["key"] not in data:
                fail(f"{workload}: volume {volume['name']} names key {item['key']}, which {source} does not have")
        paths = {item["path"]: item["key"] for item in items} if items else {key: key for key in data}
        if "subPath" in mount:
            key = paths.get(mount["subPath"])
            if key is None:
                fail(f"{workload}: mount {mount['mountPath']} takes subPath {mount['subPath']}, "
                     f"which volume {volume['name']} does not hold")
            files[mount["mountPath"]] = MountedFile(data[key], source, key)
        else:
            for path, key in paths.items():
                files[os.path.join(mount["mountPath"], path)] = MountedFile(data[key], source, key)
    return files, writable


def command_line(container):
    """The subcommand the container runs ora-server with (serve when none is named) and its configuration file."""
    arguments = (container.get("command") or []) + (container.get("args") or [])
    # The program itself (a path) and the value of --config are not subcommands; none named means serve.
    subcommands = {"serve", "migrate", "check-config", "detach-audit-partitions"}
    subcommand = next((argument for argument in arguments if argument in subcommands), "serve")
    path = "/etc/ora/ora-server.yaml"
    for index, argument in enumerate(arguments):
        if argument == "--config" and index + 1 < len(arguments):
            path = arguments[index + 1]
        elif argument.startswith("--config="):
            path = argument.split("=", 1)[1]
    return subcommand, path


def check_references(manifests):
    """What kubectl would accept but the pods or Services would not work with."""
    namespaces = [manifest.name for manifest in manifests if manifest.kind == "Namespace"]
    for manifest in manifests:
        if manifest.kind not in CLUSTER_SCOPED and manifest.namespace not in namespaces:
            fail(f"{manifest}: namespace {manifest.namespace!r} is not the one namespace.yaml defines "
                 f"({', '.join(namespaces) or 'none'})")
    for workload, template in pod_templates(manifests):
        spec = template["spec"]
        account = spec.get("serviceAccountName")
        if account and not find(manifests, "ServiceAccount", account, workload.namespace):
            fail(f"{workload}: serviceAccountName {account} is not defined by any manifest")
        selector = workload.document["spec"].get("selector", {}).get("matchLabels")
        if workload.kind == "Deployment" and not labels_match(selector, template["metadata"].get("labels") or {}):
            fail(f"{workload}: spec.selector does not match the pod template's labels")
        names = port_names(template)
        for container in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = (container.get(probe) or {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in names:
                    fail(f"{workload}: {probe} uses port {port}, which no container port is named")
            container_files(manifests, workload, template, container)
    # The migration Job must migrate for the image the replicas run: one image for all.
    images = {(str(workload), container["image"]) for workload, template in pod_templates(manifests)
              for container in template["spec"]["containers"]}
    if len({image for _, image in images}) > 1:
        listed = ", ".join(f"{image} in {where}" for where, image in sorted(images))
        fail(f"the containers run different images: {listed}")
    for manifest in manifests:
        spec = manifest.document.get("spec") or {}
        if manifest.kind == "Service":
            pods = selected_pods(manifests, spec.get("selector"), manifest.namespace)
        elif manifest.kind in ("PodDisruptionBudget", "NetworkPolicy"):
            key = "selector" if manifest.kind == "PodDisruptionBudget" else "podSelector"
            pods = selected_pods(manifests, spec[key].get("matchLabels"), manifest.namespace)
        else:
            continue
        if not pods:
            fail(f"{manifest}: its selector matches the pods of no Deployment or Job")
        names = set().union(*(port_names(template) for _, template in pods))
        if manifest.kind == "Service":
            wanted = [port.get("targetPort") for port in spec.get("ports") or []]
        elif manifest.kind == "NetworkPolicy":
            wanted = [port.get("port") for rule in spec.get("ingress") or [] for port in rule.get("ports") or []]
        else:
            wanted = []
        for port in wanted:
            if isinstance(port, str) and port not in names:
                fail(f"{manifest}: port {port} is not a named port of the pods it selects")


# MARK: The configuration through ora-server's loader


def setting_paths(node, prefix=""):
    """Every (key path, value) in a parsed configuration."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from setting_paths(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node


class TestMaterial:
    """Values of the right kind that stand in for placeholders, made once per run."""

    def __init__(self, directory):
        self.directory = directory
        self._certificate = None
        self._key = None

    def _openssl(self, *arguments):
        subprocess.run(["openssl", *arguments], check=True, capture_output=True)

    def certificate(self):
        if self._certificate is None:
            key, path = os.path.join(self.directory, "ca.key"), os.path.join(self.directory, "ca.pem")
            self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", key, "-out", path, "-days", "1", "-subj", "/CN=ora manifest check")
            with open(path) as file:
                self._certificate = file.read()
        return self._certificate

    def signing_key(self):
        if self._key is None:
            path = os.path.join(self.directory, "signing.pem")
            self._openssl("genpkey", "-algorithm", "ed25519", "-out", path)
            with open(path) as file:
                self._key = file.read()
        return self._key

    def stand_in(self, setting):
        name = setting.rsplit(".", 1)[-1]
        if name == "signing_key_file":
            return self.signing_key(), "a generated Ed25519 key"
        if name == "ca_file":
            return self.certificate(), "a generated certificate"
        return "placeholder-password-for-the-check", "a password"


def check_configuration(manifests, workload, template, container, ora_server, scratch, material):
    files, writable = container_files(manifests, workload, template, container)
    subcommand, path = command_line(container)
    mounted = files.get(path)
    if mounted is None:
        fail(f"{workload}: container {container['name']} reads {path}, which none of its mounts provides")
    where = f"{workload}, {path} ({mounted})"
    try:
        configuration = yaml.safe_load(mounted.content)
    except yaml.YAMLError as error:
        fail(f"{where}: not YAML: {error}")
    if not isinstance(configuration, dict):
        fail(f"{where}: not a mapping of settings")

    root = os.path.join(scratch, workload.name, "root")
    replacements = {}
    stood_in = []
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for setting, value in setting_paths(configuration):
        if setting.endswith("_file") and isinstance(value, str):
            source = files.get(value)
            if source is None:
                fail(f"{where}: {setting} names {value}, which none of the container's mounts provides")
            content = source.content
            if content.strip().startswith(PLACEHOLDER):
                content, kind = material.stand_in(setting)
                stood_in.append(f"{setting}: {source} is a placeholder; checked with {kind} instead")
            target = root + value
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as file:
                file.write(content)
            replacements[value] = target
        elif setting.endswith("_env") and isinstance(value, str):
            variables = {variable["name"]: variable for variable in container.get("env") or []}
            if value not in variables:
                fail(f"{where}: {setting} names the environment variable {value}, which the container does not set")
            reference = (variables[value].get("valueFrom") or {}).get("secretKeyRef")
            if reference:
                secret = find(manifests, "Secret", reference["name"], workload.namespace)
                if secret is None or reference["key"] not in object_data(secret):
                    fail(f"{where}: the environment variable {value} comes from Secret {reference['name']}, key "
                         f"{reference['key']}, which no manifest defines")
            environment[value] = variables[value].get("value") or "placeholder-password-for-the-check"
        elif setting == "audit.journal":
            directory = os.path.dirname(str(value))
            if not any(directory == mount or directory.startswith(mount + "/") for mount in writable):
                fail(f"{where}: audit.journal {value} is not on a writable volume (an emptyDir) of the container")

    text = mounted.content
    for original in sorted(replacements, key=len, reverse=True):
        text = re.sub(r"(?<![\w./-])" + re.escape(original) + r"(?![\w./-])", replacements[original], text)
    checked = os.path.join(scratch, workload.name, os.path.basename(path))
    with open(checked, "w") as file:
        file.write(text)

    result = subprocess.run(
        [ora_server, "check-config", "--config", checked], capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        message = (result.stderr + result.stdout).strip()
        # Positions in the file checked are positions in the ConfigMap's text: say where that is in the manifest.
        first, indent = block_position(mounted.source, mounted.key)
        manifest = os.path.relpath(mounted.source.file)
        message = re.sub(
            re.escape(checked) + r":(\d+):(\d+)",
            lambda match: f"{manifest}:{int(match.group(1)) + first - 1}:{int(match.group(2)) + indent}",
            message)
        message = message.replace(root, "")
        fail(f"{where} is refused by ora-server check-config (exit status {result.returncode}):\n{message}")

    # The loader accepted the types; now the ports it will listen on must be the ones the probes and the Service use.
    if subcommand == "serve":
        listen = configuration.get("listen") or {}
        host, port = listen.get("host", "127.0.0.1"), listen.get("port", 8080)
        relay = (configuration.get("screen") or {}).get("relay_port", port + 1)
        names = port_names(template)
        if host in ("127.0.0.1", "localhost", "::1"):
            fail(f"{where}: listen.host {host} is reachable from inside the pod only; use 0.0.0.0")
        for name, wanted in (("http", port), ("relay", relay)):
            if names.get(name) != wanted:
                fail(f"{where}: the server listens on {wanted} for {name}, but the container port named {name} is "
                     f"{names.get(name)}")
    print(f"ok: {where}: accepted by ora-server check-config")
    for line in stood_in:
        print(f"    {line}")


def check_configurations(manifests, ora_server):
    material_directory = tempfile.mkdtemp(prefix="ora-manifest-check.")
    try:
        material = TestMaterial(material_directory)
        checked = 0
        for workload, template in pod_templates(manifests):
            for container in template["spec"]["containers"]:
                check_configuration(manifests, workload, template, container, ora_server, material_directory,
                                    material)
                checked += 1
        if checked == 0:
            fail("no Deployment or Job runs ora-server: nothing to check the configuration of")
    finally:
        shutil.rmtree(material_directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["list", "references"])
    parser.add_argument("directory")
    parser.add_argument("--ora-server", help="the ora-server binary (references)")
    arguments = parser.parse_args()
    try:
        files = listed_files(arguments.directory)
        if arguments.command == "list":
            print("\n".join(os.path.relpath(path) for path in files))
            return 0
        manifests = read_manifests(files)
        check_references(manifests)
        print(f"ok: the references between {len(manifests)} objects hold "
              "(namespaces, selectors, ports, volumes, image)")
        check_configurations(manifests, arguments.ora_server)
    except CheckFailed as error:
        print(f"kubernetes: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
