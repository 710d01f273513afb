"""The reading view (issue 17): document first, contents, numbers beside headings, action items as a table
with an explicit "Update", Reopen apart at the end, folded checklist; the review step's own button; and the
error pages."""

import re

import pytest
from django.urls import reverse

from postmortems.models import Status
from tests.factories import UserFactory, full_incident

pytestmark = pytest.mark.django_db


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_reading_view_title_carries_no_section_number_and_has_contents(client_for):
    incident = full_incident(status=Status.PUBLISHED)
    page = client_for(incident.owner).get(incident.get_absolute_url()).content.decode()
    title = re.search(r'<h1[^>]*id="title"[^>]*>(.*?)</h1>', page, re.S)[1]
    assert title.strip() == incident.title
    contents = re.search(r'<nav[^>]*aria-label="Contents".*?</nav>', page, re.S)[0]
    assert 'href="#timeline"' in contents
    assert 'href="#action-items"' in contents
    assert '<span class="section-number">11</span>Timeline</h2>' in page


def test_reading_view_shows_action_items_as_a_table_with_an_update_control(client_for):
    incident = full_incident(status=Status.PUBLISHED)
    page = client_for(incident.owner).get(incident.get_absolute_url()).content.decode()
    table = re.search(r"<table[^>]*action-items.*?</table>", page, re.S)[0]
    item = incident.action_items.first()
    row = re.search(rf'<tr id="action-{item.pk}">.*?</tr>', table, re.S)[0]
    assert ">Update</summary>" in row
    # The status select sits inside the folded "Update" control, never open in the reading view.
    details = re.search(r'<details class="action-update">.*?</details>', row, re.S)[0]
    assert f'data-testid="action-item-form-{item.pk}"' in details


def test_reading_view_puts_reopen_last_and_apart(client_for):
    incident = full_incident(status=Status.PUBLISHED)
    page = client_for(incident.owner).get(incident.get_absolute_url()).content.decode()
    sidebar = re.search(r"<aside.*?</aside>", page, re.S)[0]
    assert 'id="review"' not in sidebar
    assert sidebar.index('id="activity"') < sidebar.index('id="reopen"')
    assert ">Reopen</button>" in sidebar[sidebar.index('id="reopen"') :]


def test_reading_view_folds_checklist_of_published_postmortem(client_for):
    incident = full_incident(status=Status.PUBLISHED, action_items=1)
    published = client_for(incident.owner).get(incident.get_absolute_url()).content.decode()
    assert re.search(r'<details class="card mb-4 checklist-folded" id="checks">', published)
    incident.status = Status.DRAFT
    incident.save()
    draft = client_for(incident.owner).get(incident.get_absolute_url()).content.decode()
    assert '<section class="card mb-4" id="checks"' in draft


def test_review_step_requests_review_itself_when_checks_allow(client_for):
    incident = full_incident(status=Status.DRAFT)
    url = reverse("postmortems:edit", args=[incident.pk, "review"])
    page = client_for(incident.owner).get(url).content.decode()
    form = re.search(r'<form method="post" action="([^"]+)">.*?</form>', page, re.S)
    assert form[1] == reverse("postmortems:request_review", args=[incident.pk])
    assert "Request review</button>" in form[0]
    assert "disabled" not in form[0]
    client_for(incident.owner).post(form[1])
    incident.refresh_from_db()
    assert incident.status == Status.IN_REVIEW


def test_review_step_disables_request_review_with_the_reason(client_for):
    incident = full_incident(status=Status.DRAFT, committee=[])
    page = client_for(incident.owner).get(reverse("postmortems:edit", args=[incident.pk, "review"]))
    body = page.content.decode()
    assert 'disabled aria-describedby="review-blockers"' in body
    assert "Choose at least 1 reviewer" in body


def test_edit_link_of_published_postmortem_explains_and_leads_back(client_for):
    incident = full_incident(status=Status.PUBLISHED)
    response = client_for(incident.owner).get(reverse("postmortems:edit", args=[incident.pk, "basics"]))
    assert response.status_code == 403
    text = _text(response.content.decode())
    assert "Published postmortems are read-only; Reopen it to edit." in text
    assert f'href="{incident.get_absolute_url()}"' in response.content.decode()
    assert "Skip to the content" in text  # the page frame, with its navigation


def test_not_found_page_says_what_happened_with_navigation(client_for):
    response = client_for(UserFactory()).get("/postmortems/999999/")
    assert response.status_code == 404
    text = _text(response.content.decode())
    assert "There is nothing here" in text
    assert "belongs to a postmortem you cannot see" in text
    assert 'href="/postmortems/drafts/"' in response.content.decode()


def test_server_error_page_renders_without_a_request_context():
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "Something went wrong on our side" in html
    assert 'href="/postmortems/"' in html


def test_relative_times_say_just_now_then_one_unit():
    import datetime as dt

    from django.utils import timezone

    from postmortems.templatetags.hindsight import ago

    now = timezone.now()
    assert ago(now - dt.timedelta(seconds=5)) == "just now"
    assert ago(now - dt.timedelta(minutes=5, seconds=3)) == "5\xa0minutes ago"
    assert ago(now - dt.timedelta(days=3, hours=4)) == "3\xa0days ago"


def test_drafts_say_updated_just_now(client_for):
    incident = full_incident(status=Status.DRAFT)
    page = client_for(incident.owner).get(reverse("postmortems:drafts")).content.decode()
    assert "updated just now" in page
