"""Chat messages for Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat take the same JSON):
a readable line with links, made from the event's payload."""

from __future__ import annotations


def _link(url: str, text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<{url}|{text}>"


def message(event: str, payload: dict) -> dict:
    data = payload.get("data", {})
    incident = data.get("incident", {})
    title = incident.get("title") or f"Postmortem #{incident.get('id', '?')} (restricted)"
    link = _link(incident["url"], title) if incident.get("url") else title
    actor = data.get("actor") or "Someone"
    item = data.get("action_item") or {}
    item_link = _link(item["url"], item.get("title") or f"Action item #{item.get('id')}") if item else ""
    texts = {
        "postmortem.review_requested": f":mag: {actor} requested review of {link}.",
        "postmortem.signed_off": f":white_check_mark: {actor} approved {link}.",
        "postmortem.changes_requested": f":memo: {actor} requested changes to {link}.",
        "postmortem.published": f":books: {actor} published {link}.",
        "postmortem.reopened": f":leftwards_arrow_with_hook: {actor} reopened {link}.",
        "action_item.created": f":pushpin: New action item {item_link} on {link}.",
        "action_item.updated": f":pushpin: {actor} updated action item {item_link} on {link}.",
        "action_item.overdue": f":alarm_clock: Action item {item_link} on {link} is overdue.",
        "webhook.test": ":wave: A test message from Hindsight.",
    }
    lines = [texts.get(event, f"{event}: {link}")]
    if event == "postmortem.review_requested" and incident.get("committee"):
        lines[0] = lines[0].removesuffix(".") + " from " + ", ".join(incident["committee"]) + "."
    if event == "postmortem.changes_requested" and data.get("sign_off", {}).get("comment"):
        lines.append(f"> {data['sign_off']['comment']}")
    if event == "postmortem.published":
        if incident.get("summary"):
            lines.append(incident["summary"].strip()[:600])
        if incident.get("tags"):
            lines.append("Tags: " + ", ".join(incident["tags"]))
    return {"text": "\n".join(lines)}
