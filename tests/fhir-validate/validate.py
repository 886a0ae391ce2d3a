"""Third-party check: every resource the hub serves for a demo region is valid FHIR R4
according to the `fhir.resources` (4.0.1) models, and so are the hub's own Bundles,
CapabilityStatement and OperationOutcomes.

Usage: python validate.py BASE_URL   (e.g. http://127.0.0.1:8080/fhir)
Signs in as CARESHARE_VALIDATE_USER with CARESHARE_VALIDATE_PASSPHRASE.
"""

import json
import os
import sys
import urllib.error
import urllib.request

from fhir.resources import construct_fhir_element


TOKEN = None


def sign_in(base):
    global TOKEN
    body = json.dumps({
        "username": os.environ["CARESHARE_VALIDATE_USER"],
        "passphrase": os.environ["CARESHARE_VALIDATE_PASSPHRASE"],
    }).encode()
    root = base[: -len("/fhir")] if base.endswith("/fhir") else base
    req = urllib.request.Request(f"{root}/auth/token", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        TOKEN = json.load(r)["access_token"]


def get(url):
    headers = {"Accept": "application/fhir+json"}
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def check(resource, where, failures):
    try:
        construct_fhir_element(resource["resourceType"], resource)
        return True
    except Exception as e:  # the library raises pydantic errors of many kinds
        failures.append(f"{where}: {resource.get('resourceType')}/{resource.get('id')}: {e}")
        return False


def main():
    base = sys.argv[1].rstrip("/")
    sign_in(base)
    failures = []
    passed = 0
    status, cs = get(f"{base}/metadata")
    passed += check(cs, "metadata", failures)
    status, oo = get(f"{base}/Patient?no-such-parameter=x")
    if status != 400:
        failures.append(f"unsupported parameter answered {status}")
    passed += check(oo, "error", failures)

    url = f"{base}/_history?_count=1000"
    types = {}
    while url:
        status, bundle = get(url)
        if status != 200:
            failures.append(f"{url}: HTTP {status}")
            break
        passed += check(bundle, "history page", failures)
        for entry in bundle.get("entry", []):
            resource = entry.get("resource")
            if resource is None:
                continue
            types[resource["resourceType"]] = types.get(resource["resourceType"], 0) + 1
            passed += check(resource, "history", failures)
        url = next((l["url"] for l in bundle.get("link", []) if l["relation"] == "next"), None)

    # A search Bundle with an include, as a client reads it.
    status, bundle = get(f"{base}/Observation?_count=20&_include=Observation:patient")
    passed += check(bundle, "searchset", failures)

    print("validated by fhir.resources (R4):", ", ".join(f"{t} {n}" for t, n in sorted(types.items())))
    for f in failures[:50]:
        print("INVALID", f)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures or passed < 100 else 0


if __name__ == "__main__":
    sys.exit(main())
