# The official Python client (Debian's python3-kubernetes) against the dev API server: run by python-client.test.ts
# with KUBECONFIG set; prints one JSON object per check on stdout, which the Node test asserts on.
import json
import sys
import threading
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config()
core = client.CoreV1Api()
apps = client.AppsV1Api()
ext = client.ApiextensionsV1Api()
custom = client.CustomObjectsApi()
NS = sys.argv[1]


def out(check, **kw):
    print(json.dumps({"check": check, **kw}), flush=True)


def api_error(e):
    body = json.loads(e.body) if e.body else {}
    return {"status": e.status, "reason": body.get("reason"), "message": body.get("message"), "kind": body.get("kind")}


# typed objects: create, read, list with a selector, strategic merge patch
core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
cm = core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm1", labels={"app": "py"}), data={"a": "1"}))
out("created", name=cm.metadata.name, uid=bool(cm.metadata.uid), rv=cm.metadata.resource_version)
listed = core.list_namespaced_config_map(NS, label_selector="app=py")
out("listed", names=[i.metadata.name for i in listed.items])
patched = core.patch_namespaced_config_map("cm1", NS, {"data": {"b": "2"}})
out("patched", data=patched.data)

# errors carry kube-apiserver's Status: NotFound, Conflict on a stale resourceVersion, Invalid with causes
try:
    core.read_namespaced_config_map("nope", NS)
except ApiException as e:
    out("notfound", **api_error(e))
stale = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm1", resource_version=cm.metadata.resource_version), data={"c": "3"})
try:
    core.replace_namespaced_config_map("cm1", NS, stale)
except ApiException as e:
    out("conflict", **api_error(e))
try:
    core.create_namespaced_service(NS, client.V1Service(metadata=client.V1ObjectMeta(name="bad"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=0)])))
except ApiException as e:
    err = api_error(e)
    err["causes"] = json.loads(e.body).get("details", {}).get("causes")
    out("invalid", **err)

# a watch (watch=True on the wire) sees the status writes of another client
svc = core.create_namespaced_service(NS, client.V1Service(metadata=client.V1ObjectMeta(name="web"), spec=client.V1ServiceSpec(type="LoadBalancer", ports=[client.V1ServicePort(port=80)])))
events = []
started = threading.Event()


def watcher():
    w = watch.Watch()
    started.set()
    for ev in w.stream(core.list_namespaced_service, NS, timeout_seconds=20):
        ing = ev["object"].status.load_balancer.ingress
        events.append((ev["type"], ev["object"].metadata.name, [i.ip for i in ing] if ing else []))
        if ing:
            w.stop()


t = threading.Thread(target=watcher)
t.start()
started.wait()
time.sleep(0.5)
svc = core.read_namespaced_service("web", NS)
svc.status = client.V1ServiceStatus(load_balancer=client.V1LoadBalancerStatus(ingress=[client.V1LoadBalancerIngress(ip="192.0.2.10")]))
svc.metadata.annotations = {"metallb.io/ip-allocated-from-pool": "pool1"}
updated = core.replace_namespaced_service_status("web", NS, svc)
t.join(25)
out("watch", events=events, annotation=updated.metadata.annotations.get("metallb.io/ip-allocated-from-pool"))

# custom resources through a CRD: create, list, merge patch, status, delete
ext.create_custom_resource_definition(
    client.V1CustomResourceDefinition(
        metadata=client.V1ObjectMeta(name="pools.example.com"),
        spec=client.V1CustomResourceDefinitionSpec(
            group="example.com",
            scope="Namespaced",
            names=client.V1CustomResourceDefinitionNames(plural="pools", singular="pool", kind="Pool"),
            versions=[
                client.V1CustomResourceDefinitionVersion(
                    name="v1",
                    served=True,
                    storage=True,
                    subresources=client.V1CustomResourceSubresources(status={}),
                    schema=client.V1CustomResourceValidation(
                        open_apiv3_schema=client.V1JSONSchemaProps(
                            type="object",
                            properties={
                                "spec": client.V1JSONSchemaProps(type="object", properties={"size": client.V1JSONSchemaProps(type="integer", minimum=1)}),
                                "status": client.V1JSONSchemaProps(type="object", x_kubernetes_preserve_unknown_fields=True),
                            },
                        )
                    ),
                )
            ],
        ),
    )
)
obj = custom.create_namespaced_custom_object("example.com", "v1", NS, "pools", {"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "p1"}, "spec": {"size": 2}})
out("custom-created", name=obj["metadata"]["name"], size=obj["spec"]["size"])
obj = custom.patch_namespaced_custom_object("example.com", "v1", NS, "pools", "p1", {"spec": {"size": 3}})
out("custom-patched", size=obj["spec"]["size"], generation=obj["metadata"]["generation"])
obj = custom.patch_namespaced_custom_object_status("example.com", "v1", NS, "pools", "p1", {"status": {"ready": True}})
out("custom-status", status=obj.get("status"), generation=obj["metadata"]["generation"])
try:
    custom.patch_namespaced_custom_object("example.com", "v1", NS, "pools", "p1", {"spec": {"size": 0}})
except ApiException as e:
    out("custom-invalid", **api_error(e))
out("custom-list", names=[i["metadata"]["name"] for i in custom.list_namespaced_custom_object("example.com", "v1", NS, "pools")["items"]])
deleted = custom.delete_namespaced_custom_object("example.com", "v1", NS, "pools", "p1")
out("custom-deleted", kind=deleted.get("kind"))

# workloads: a Deployment scaled through the scale subresource; a delete with a propagation policy
apps.create_namespaced_deployment(
    NS,
    client.V1Deployment(
        metadata=client.V1ObjectMeta(name="dep"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "dep"}),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "dep"}), spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")])),
        ),
    ),
)
scale = apps.patch_namespaced_deployment_scale("dep", NS, {"spec": {"replicas": 4}})
out("scaled", replicas=scale.spec.replicas, deployment=apps.read_namespaced_deployment("dep", NS).spec.replicas)
st = apps.delete_namespaced_deployment("dep", NS, body=client.V1DeleteOptions(propagation_policy="Foreground"))
d = apps.read_namespaced_deployment("dep", NS)
out("foreground", finalizers=d.metadata.finalizers, deleting=d.metadata.deletion_timestamp is not None)

# service-account tokens (TokenRequest) and RBAC refusals as the client sees them
core.create_namespaced_service_account(NS, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot")))
tr = core.create_namespaced_service_account_token("robot", NS, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)))
conf = client.Configuration.get_default_copy()
conf.api_key = {"authorization": "Bearer " + tr.status.token}
conf.cert_file = None
conf.key_file = None
robot = client.CoreV1Api(client.ApiClient(conf))
try:
    robot.list_namespaced_pod(NS)
except ApiException as e:
    out("forbidden", **api_error(e))
review = client.AuthorizationV1Api(client.ApiClient(conf)).create_self_subject_access_review(
    client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(namespace=NS, verb="list", resource="pods")))
)
out("ssar", allowed=review.status.allowed)
out("done")
