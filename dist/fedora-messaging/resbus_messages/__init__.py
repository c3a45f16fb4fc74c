"""fedora-messaging message classes for resbus's notifications.

resbusd publishes, on its notification exchange (amq.topic by default),
one JSON message per ticket opened, ready, failed or closed and per
resource starting, up or deleted; its fedora_messaging_schema header is
the entry point name of one of the classes below, and its resbus_schema
header the URL ($id) of the JSON Schema each class validates bodies
with.  See resbusd(8), "NOTIFICATIONS".
"""
import json
import os

from fedora_messaging import message

SCHEMA_URL_BASE = (
    "https://raw.githubusercontent.com/resbus/resbus/main/schemas/v1/")


def _schema_dirs():
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = []
    if os.environ.get("RESBUS_SCHEMA_DIR"):
        dirs.append(os.environ["RESBUS_SCHEMA_DIR"])
    dirs.append(os.path.join(here, "schemas"))
    dirs.append("/usr/share/resbus/schemas/v1")
    # The source tree: dist/fedora-messaging/resbus_messages -> schemas/v1
    dirs.append(os.path.join(here, "..", "..", "..", "schemas", "v1"))
    return dirs


def load_schema(name):
    """The JSON Schema of kind NAME (resbus.ticket.ready...), as a dict."""
    for d in _schema_dirs():
        path = os.path.join(d, name + ".json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fp:
                schema = json.load(fp)
            if schema.get("$id") != SCHEMA_URL_BASE + name + ".json":
                raise ValueError("%s: $id %r is not the one resbusd names" %
                                 (path, schema.get("$id")))
            return schema
    raise FileNotFoundError("no schema %s.json in %s" %
                            (name, ", ".join(_schema_dirs())))


class ResbusMessage(message.Message):
    """What all resbus notifications share."""

    @property
    def app_name(self):
        return "resbus"

    @property
    def app_icon(self):
        return None

    def _owner(self):
        return self.body.get("ticket", {}).get("owner")

    @property
    def agent_name(self):
        return self._owner()

    @property
    def usernames(self):
        owner = self._owner()
        return [owner] if owner else []

    def __str__(self):
        return json.dumps(self.body, indent=2, sort_keys=True)


class _TicketMessage(ResbusMessage):

    @property
    def ticket(self):
        return self.body["ticket"]

    @property
    def summary(self):
        t = self.ticket
        text = "resbus ticket %d (%s) is %s" % (
            t["id"], ", ".join(t["tags"]), t["state"])
        r = t.get("resource")
        if r is not None and r.get("name"):
            text += ": %s in pool %s" % (r["name"], r.get("pool"))
        if t.get("closed_reason"):
            text += " (%s)" % t["closed_reason"]
        return text


class _ResourceMessage(ResbusMessage):
    @property
    def resource(self):
        return self.body["resource"]

    @property
    def summary(self):
        r = self.resource
        return "resbus resource %d %s in pool %s is %s" % (
            r["id"], r["name"], r["pool"], r["state"])


class TicketOpenV1(_TicketMessage):
    body_schema = load_schema("resbus.ticket.open")


class TicketReadyV1(_TicketMessage):
    body_schema = load_schema("resbus.ticket.ready")


class TicketFailedV1(_TicketMessage):
    severity = message.WARNING
    body_schema = load_schema("resbus.ticket.failed")


class TicketClosedV1(_TicketMessage):
    body_schema = load_schema("resbus.ticket.closed")


class ResourceStartingV1(_ResourceMessage):
    body_schema = load_schema("resbus.resource.starting")


class ResourceUpV1(_ResourceMessage):
    body_schema = load_schema("resbus.resource.up")


class ResourceDeletedV1(_ResourceMessage):
    body_schema = load_schema("resbus.resource.deleted")
