"""The REST API (/api/v1/): HTTP translated to the same QuerySets, forms and domain functions as the pages.

Reads go through `Incident.objects.visible_to` / `ActionItem.objects.visible_to` (what the person may not
see is a 404), content writes through the authoring forms and postmortems/editing.py (with the revision
the client read, `If-Match`), transitions through postmortems/workflow.py, action items through
postmortems/followthrough.py. Every Activity line a request writes says it came through the API.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max, Prefetch, Value
from django.db.models.functions import Concat
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from integrations.api import writing
from integrations.api.serializers import (
    ActionItemSerializer,
    IncidentDetailSerializer,
    IncidentSummarySerializer,
)
from postmortems import editing, followthrough, workflow
from postmortems.followthrough_forms import ActionItemFilterForm, ActionItemUpdateForm
from postmortems.forms import IncidentBasicsForm, SearchForm
from postmortems.models import (
    ActionItem,
    Activity,
    Incident,
    SignOff,
    Status,
)

THROUGH_THE_API = "through the API"


# --- errors: JSON with field messages, never a 500 for something the client did ----------------------------


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The postmortem changed since the revision you sent."
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = 'Send the revision you read in an If-Match header, e.g. If-Match: "7".'
    default_code = "precondition_required"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc, context):
    """Domain errors as HTTP errors; every error body is {"detail": …} plus {"errors": {field: [...]}}."""
    if isinstance(exc, writing.FormErrors):
        exc = exceptions.ValidationError(exc.errors)
    elif isinstance(exc, workflow.NotAllowed | followthrough.NotAllowed):
        exc = exceptions.PermissionDenied(str(exc))
    elif isinstance(exc, workflow.WorkflowError | followthrough.FollowThroughError | editing.EditRefused):
        exc = Conflict(str(exc))
    elif isinstance(exc, ValidationError):
        exc = exceptions.ValidationError({"non_field_errors": exc.messages})
    elif isinstance(exc, LookupError):
        exc = exceptions.NotFound(str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"detail": "Some fields are not valid.", "errors": errors}
    return response


# --- helpers -----------------------------------------------------------------------------------------------


def _if_match(request) -> int:
    """The revision named by If-Match ("7", W/"7" or 7)."""
    header = request.headers.get("If-Match", "")
    found = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', header)
    if not found:
        raise PreconditionRequired()
    return int(found.group(1))


def _etag(incident: Incident) -> str:
    return f'"{incident.revision}"'


class through_the_api:
    """One transaction around a domain call whose Activity lines then say they came through the API.

    The incident row is locked first (every writer of its activity locks it too), so the lines written
    meanwhile are exactly this call's."""

    def __init__(self, incident: Incident):
        self.incident = incident

    def __enter__(self):
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        Incident.objects.select_for_update().filter(pk=self.incident.pk).values("pk").first()
        self.before = Activity.objects.filter(incident=self.incident).aggregate(last=Max("pk"))["last"] or 0
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            Activity.objects.filter(incident=self.incident, pk__gt=self.before, detail="").update(
                detail=Value(THROUGH_THE_API)
            )
            Activity.objects.filter(incident=self.incident, pk__gt=self.before).exclude(
                detail=THROUGH_THE_API
            ).update(detail=Concat(F("detail"), Value(f" ({THROUGH_THE_API})")))
        return self.atomic.__exit__(exc_type, exc, tb)


def _full(queryset):
    return queryset.select_related("owner").prefetch_related(
        "tags",
        "committee",
        "co_authors",
        "teams",
        "timeline_events",
        "factors",
        "lessons__action_items",
        Prefetch(
            "action_items", queryset=ActionItem.objects.select_related("owner").prefetch_related("factors")
        ),
        Prefetch("sign_offs", queryset=SignOff.objects.filter(is_current=True).select_related("reviewer")),
    )


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class ActionItemOrder(CursorPagination):
    ordering = "id"
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


def _visible_incident(request, pk: int) -> Incident:
    return get_object_or_404(Incident.objects.visible_to(request.user), pk=pk)


def _editable_incident(request, pk: int) -> Incident:
    """As the authoring pages: 404 when they cannot see it, 403 when they may not edit it."""
    incident = get_object_or_404(
        Incident.objects.visible_to(request.user).prefetch_related("co_authors"), pk=pk
    )
    if not incident.can_edit(request.user):
        raise PermissionDenied("Only the owner and co-authors edit a postmortem, until it is published.")
    return incident


def _detail_response(request, pk: int, *, status_code: int = 200) -> Response:
    incident = _full(Incident.objects.filter(pk=pk)).get()
    data = IncidentDetailSerializer(incident, context={"request": request}).data
    return Response(data, status=status_code, headers={"ETag": _etag(incident)})


SEARCH_PARAMETERS = [
    OpenApiParameter("q", str, description="Text, in the query language of /postmortems/: "
                     '"quoted phrase", -exclude, a or b.'),
    OpenApiParameter("tag", str, many=True, description="A tag slug; repeat for AND."),
    OpenApiParameter("severity", str, many=True, enum=["SEV1", "SEV2", "SEV3", "SEV4"]),
    OpenApiParameter("from", OpenApiTypes.DATE, description="Incident date on or after."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Incident date on or before."),
    OpenApiParameter("owner", str, description="The owner's username."),
    OpenApiParameter("team", str, description="A team's slug."),
    OpenApiParameter("open", bool, description="Only those with open action items."),
    OpenApiParameter(
        "status", str, enum=["published", "draft", "in_review", "any"],
        description="Published (the default), or those of another status that you may see.",
    ),
]  # fmt: skip

STEP_BODY = OpenApiTypes.OBJECT
IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=True,
    description='The revision you read (the ETag of GET /postmortems/{id}/), e.g. "7".',
)  # fmt: skip
ERROR = inline_serializer(
    "Error",
    {
        "detail": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(), required=False),
    },
)


# --- postmortems -------------------------------------------------------------------------------------------


class IncidentListView(GenericAPIView):
    serializer_class = IncidentSummarySerializer
    pagination_class = NewestFirst

    @extend_schema(
        parameters=SEARCH_PARAMETERS, responses={200: IncidentSummarySerializer(many=True), 400: ERROR}
    )
    def get(self, request):
        """Postmortems you may see, searched and narrowed as on /postmortems/; newest first."""
        form = SearchForm(request.query_params)
        if not form.is_valid():
            raise writing.FormErrors(writing.form_errors(form))
        wanted = request.query_params.get("status", Status.PUBLISHED)
        incidents = Incident.objects.visible_to(request.user)
        if wanted in Status.values:
            incidents = incidents.filter(status=wanted)
        elif wanted != "any":
            raise exceptions.ValidationError({"status": ["Choose published, draft, in_review or any."]})
        incidents = form.filter(incidents).select_related("owner").prefetch_related("tags")
        page = self.paginate_queryset(incidents)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=STEP_BODY, responses={201: IncidentDetailSerializer, 400: ERROR})
    def post(self, request):
        """Create a draft from the fields of the “basics” step (title, incident_date, severity, time_zone,
        owner, committee, co_authors, tags, visibility, teams, started_at …): people and teams by id."""
        body = _body(request)
        defaults = {
            "owner": request.user.pk,
            "time_zone": request.user.time_zone,
            "severity": "SEV3",
            "visibility": "normal",
        }
        form = IncidentBasicsForm(writing._merge(dict(defaults), body, IncidentBasicsForm().fields))
        if not form.is_valid():
            raise writing.FormErrors(writing.form_errors(form))
        with transaction.atomic():
            incident = editing.create_incident(form, by=request.user)
            Activity.objects.filter(incident=incident).update(detail=Value(THROUGH_THE_API))
        return _detail_response(request, incident.pk, status_code=201)


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
    return dict(request.data)


class IncidentDetailView(APIView):
    @extend_schema(responses={200: IncidentDetailSerializer, 404: ERROR})
    def get(self, request, pk: int):
        """The whole postmortem: every section, timeline, factors (`parent` makes the “why?” tree),
        lessons, action items and current sign-offs. The ETag is its revision."""
        _visible_incident(request, pk)
        return _detail_response(request, pk)


class StepView(APIView):
    @extend_schema(
        request=STEP_BODY,
        parameters=[IF_MATCH],
        responses={200: IncidentDetailSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 412: ERROR, 428: ERROR},
    )
    def patch(self, request, pk: int, step: str):
        """Change fields of one step: `basics`, `impact` (summary, supporting_data, customer_impact,
        impacted_customers) or `analysis` (response_analysis, post_incident_analysis)."""
        if step not in writing.INCIDENT_STEPS:
            raise Http404("No such step.")
        incident = _editable_incident(request, pk)
        expected = _if_match(request)
        forms = writing.incident_forms(step, incident, _body(request), editor=request.user)
        _save(incident, step, forms, by=request.user, expected=expected)
        return _detail_response(request, pk)


def _save(incident: Incident, step: str, forms, *, by, expected: int) -> None:
    try:
        with through_the_api(incident):
            editing.save_step(incident, step=step, forms=forms, by=by, expected_revision=expected)
    except editing.EditConflict as conflict:
        raise PreconditionFailed(
            f"The {step} step changed after revision {expected}: it is now revision "
            f"{conflict.current.revision}. Read it again and re-apply your change."
        ) from conflict


ROW_SERIALIZERS = {
    "timeline": "timeline_events",
    "factors": "factors",
    "lessons": "lessons",
    "actions": "action_items",
}


class RowsView(APIView):
    @extend_schema(
        operation_id="postmortems_rows_create",
        request=STEP_BODY,
        parameters=[IF_MATCH],
        responses={201: IncidentDetailSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 412: ERROR, 428: ERROR},
    )
    def post(self, request, pk: int, rows: str):
        """Add a row: a timeline event (occurred_at, zone, kind, description, link), a contributing factor
        (description, category, is_human_error, parent), a lesson (text, action_items) or an action item
        (title, owner, priority, due_date, backlog_link, factors, lessons)."""
        step = _row_step(rows)
        incident = _editable_incident(request, pk)
        expected = _if_match(request)
        formset, _ = writing.row_formset(step, incident, add=_body(request))
        _save(incident, step, [formset], by=request.user, expected=expected)
        response = _detail_response(request, pk, status_code=201)
        if formset.new_objects:
            response["Location"] = f"{request.path}{formset.new_objects[0].pk}/"
        return response


class RowView(APIView):
    @extend_schema(
        request=STEP_BODY,
        parameters=[IF_MATCH],
        responses={200: IncidentDetailSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 412: ERROR, 428: ERROR},
    )
    def patch(self, request, pk: int, rows: str, row: int):
        """Change fields of one row."""
        step = _row_step(rows)
        incident = _editable_incident(request, pk)
        expected = _if_match(request)
        formset, _ = writing.row_formset(step, incident, change=(row, _body(request)))
        _save(incident, step, [formset], by=request.user, expected=expected)
        return _detail_response(request, pk)

    @extend_schema(
        parameters=[IF_MATCH],
        responses={200: IncidentDetailSerializer, 403: ERROR, 404: ERROR, 412: ERROR, 428: ERROR},
    )
    def delete(self, request, pk: int, rows: str, row: int):
        """Remove one row."""
        step = _row_step(rows)
        incident = _editable_incident(request, pk)
        expected = _if_match(request)
        formset, _ = writing.row_formset(step, incident, delete=row)
        _save(incident, step, [formset], by=request.user, expected=expected)
        return _detail_response(request, pk)


def _row_step(rows: str) -> str:
    if rows not in writing.ROW_STEPS:
        raise Http404("No such kind of row.")
    return writing.ROW_STEPS[rows]


# --- the workflow ------------------------------------------------------------------------------------------

REVISION_BODY = inline_serializer(
    "SignOffRequest",
    {
        "revision": serializers.IntegerField(
            required=False, help_text="The revision you read (or If-Match)."
        ),
        "comment": serializers.CharField(required=False, help_text="Required to request changes."),
    },
)
REASON_BODY = inline_serializer("ReopenRequest", {"reason": serializers.CharField()})
EMPTY_BODY = inline_serializer("EmptyRequest", {})


class TransitionView(APIView):
    """POST /postmortems/{id}/<action>/: one workflow action, as that person, through workflow.py."""

    action = ""

    @extend_schema(
        request=EMPTY_BODY, responses={200: IncidentDetailSerializer, 403: ERROR, 404: ERROR, 409: ERROR}
    )
    def post(self, request, pk: int):
        incident = _visible_incident(request, pk)
        body = _body(request)
        with through_the_api(incident):
            self.run(incident, request.user, body, request)
        return _detail_response(request, pk)

    def run(self, incident, user, body, request):
        raise NotImplementedError


class RequestReviewView(TransitionView):
    def run(self, incident, user, body, request):
        workflow.request_review(incident, by=user)


class WithdrawView(TransitionView):
    def run(self, incident, user, body, request):
        workflow.withdraw(incident, by=user)


class PublishView(TransitionView):
    def run(self, incident, user, body, request):
        workflow.publish(incident, by=user)


def _revision(request, body) -> int:
    value = body.get("revision")
    if value is None:
        return _if_match(request)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise exceptions.ValidationError({"revision": ["Send the revision you read, a whole number."]})
    return int(value)


def _text(body, name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise exceptions.ValidationError({name: ["Send text."]})
    return value


class ApproveView(TransitionView):
    @extend_schema(
        request=REVISION_BODY, responses={200: IncidentDetailSerializer, 403: ERROR, 404: ERROR, 409: ERROR}
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def run(self, incident, user, body, request):
        workflow.approve(incident, by=user, revision=_revision(request, body), comment=_text(body, "comment"))


class RequestChangesView(ApproveView):
    def run(self, incident, user, body, request):
        workflow.request_changes(
            incident, by=user, revision=_revision(request, body), comment=_text(body, "comment")
        )


class ReopenView(TransitionView):
    @extend_schema(
        request=REASON_BODY, responses={200: IncidentDetailSerializer, 403: ERROR, 404: ERROR, 409: ERROR}
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def run(self, incident, user, body, request):
        workflow.reopen(incident, by=user, reason=_text(body, "reason"))


# --- action items ------------------------------------------------------------------------------------------


class ActionItemListView(GenericAPIView):
    serializer_class = ActionItemSerializer
    pagination_class = ActionItemOrder

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "scope", str, enum=["mine", "team", "all"], description="Whose (default: mine)."
            ),
            OpenApiParameter(
                "status", str, enum=["unfinished", "open", "in_progress", "done", "wont_do", "any"]
            ),
            OpenApiParameter("priority", str, enum=["P1", "P2", "P3", "P4"]),
            OpenApiParameter("overdue", bool),
        ],
        responses={200: ActionItemSerializer(many=True), 400: ERROR},
    )
    def get(self, request):
        """Action items of postmortems you may see, as /action-items/ filters them."""
        form = ActionItemFilterForm(request.query_params)
        if not form.is_valid():
            raise writing.FormErrors(writing.form_errors(form))
        chosen = form.cleaned_data
        items = followthrough.in_scope(request.user, chosen["scope"])
        if chosen["status"] == "unfinished":
            items = items.unfinished()
        elif chosen["status"] != "any":
            items = items.filter(status=chosen["status"])
        if chosen["priority"]:
            items = items.filter(priority=chosen["priority"])
        if chosen["overdue"]:
            items = items.overdue(timezone.localdate())
        items = items.select_related("owner").prefetch_related("factors")
        page = self.paginate_queryset(items)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class ActionItemDetailView(APIView):
    def _item(self, request, pk: int) -> ActionItem:
        # As /action-items/: what they may see, and their own items wherever they are (reachable_by).
        return get_object_or_404(
            ActionItem.objects.reachable_by(request.user).select_related("incident__owner", "owner"), pk=pk
        )

    @extend_schema(responses={200: ActionItemSerializer, 404: ERROR})
    def get(self, request, pk: int):
        return Response(ActionItemSerializer(self._item(request, pk)).data)

    @extend_schema(
        request=inline_serializer(
            "ActionItemUpdate",
            {
                "status": serializers.ChoiceField(
                    choices=["open", "in_progress", "done", "wont_do"], required=False
                ),
                "wont_do_reason": serializers.CharField(required=False),
                "backlog_link": serializers.URLField(required=False),
                "due_date": serializers.DateField(required=False),
            },
        ),
        responses={200: ActionItemSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def patch(self, request, pk: int):
        """Status, reason, due date and backlog link, also after publication (as on /action-items/)."""
        item = self._item(request, pk)
        if not item.can_update(request.user):
            raise PermissionDenied(
                "Only the action item’s owner and the postmortem’s owner and co-authors can update it."
            )
        body = _body(request)
        current = {
            "status": item.status,
            "wont_do_reason": item.wont_do_reason,
            "backlog_link": item.backlog_link,
            "due_date": item.due_date or "",
        }
        form = ActionItemUpdateForm(
            writing._merge(current, body, ["status", "wont_do_reason", "backlog_link", "due_date"])
        )
        if not form.is_valid():
            raise writing.FormErrors(writing.form_errors(form))
        with through_the_api(item.incident):
            followthrough.update_action_item(
                item,
                by=request.user,
                status=form.cleaned_data["status"],
                backlog_link=form.cleaned_data["backlog_link"],
                wont_do_reason=form.cleaned_data["wont_do_reason"],
                due_date=form.cleaned_data["due_date"],
            )
        item.refresh_from_db()
        return Response(ActionItemSerializer(item).data)


class MeView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "name": serializers.CharField(),
                "is_staff": serializers.BooleanField(),
                "token": serializers.CharField(),
                "access": serializers.CharField(),
            },
        )
    )
    def get(self, request):
        """Who the token acts as."""
        token = request.auth
        return Response(
            {
                "username": request.user.username,
                "name": str(request.user),
                "is_staff": request.user.is_staff,
                "token": getattr(token, "name", ""),
                "access": getattr(token, "access", ""),
            }
        )
