"""What the API shows of a postmortem: read-only serializers (writes go through the authoring forms)."""

from __future__ import annotations

from rest_framework import serializers

from postmortems.models import (
    ActionItem,
    Activity,
    ContributingFactor,
    Incident,
    Lesson,
    SignOff,
    TimelineEvent,
)


class PersonField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, **kwargs)


class TagsField(serializers.ListField):
    child = serializers.CharField()

    def to_representation(self, data):
        return sorted(tag.name for tag in data.all())


class IncidentSummarySerializer(serializers.ModelSerializer):
    owner = PersonField()
    tags = TagsField(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "url",
            "title",
            "status",
            "severity",
            "visibility",
            "incident_date",
            "owner",
            "tags",
            "summary",
            "revision",
            "created_at",
            "updated_at",
            "published_at",
        ]

    def get_url(self, incident) -> str:
        request = self.context.get("request")
        path = incident.get_absolute_url()
        return request.build_absolute_uri(path) if request else path


class TimelineEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TimelineEvent
        fields = ["id", "occurred_at", "kind", "description", "link"]


class FactorSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContributingFactor
        fields = ["id", "parent", "description", "category", "is_human_error"]


class ActionItemSerializer(serializers.ModelSerializer):
    owner = PersonField()
    incident = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "incident",
            "title",
            "owner",
            "priority",
            "due_date",
            "status",
            "wont_do_reason",
            "backlog_link",
            "factors",
            "completed_at",
            "updated_at",
        ]


class LessonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lesson
        fields = ["id", "text", "action_items"]


class SignOffSerializer(serializers.ModelSerializer):
    reviewer = PersonField()
    is_stale = serializers.BooleanField(read_only=True)

    class Meta:
        model = SignOff
        fields = ["id", "reviewer", "decision", "comment", "revision", "is_stale", "created_at"]


class ActivitySerializer(serializers.ModelSerializer):
    actor = PersonField()

    class Meta:
        model = Activity
        fields = ["id", "actor", "verb", "detail", "revision", "created_at"]


class IncidentDetailSerializer(IncidentSummarySerializer):
    committee = PersonField(many=True)
    co_authors = PersonField(many=True)
    teams = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    timeline = TimelineEventSerializer(source="timeline_events", many=True, read_only=True)
    factors = FactorSerializer(many=True, read_only=True)
    lessons = LessonSerializer(many=True, read_only=True)
    action_items = ActionItemSerializer(many=True, read_only=True)
    sign_offs = serializers.SerializerMethodField()
    step_revisions = serializers.JSONField(read_only=True)

    class Meta(IncidentSummarySerializer.Meta):
        fields = [
            *IncidentSummarySerializer.Meta.fields,
            "time_zone",
            "started_at",
            "detected_at",
            "mitigated_at",
            "resolved_at",
            "committee",
            "co_authors",
            "teams",
            "supporting_data",
            "customer_impact",
            "impacted_customers",
            "response_analysis",
            "post_incident_analysis",
            "timeline",
            "factors",
            "lessons",
            "action_items",
            "sign_offs",
            "step_revisions",
        ]

    def get_sign_offs(self, incident) -> list[dict]:
        current = [s for s in incident.sign_offs.all() if s.is_current]
        return SignOffSerializer(current, many=True).data
