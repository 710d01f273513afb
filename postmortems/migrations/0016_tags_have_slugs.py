from django.db import migrations


def give_every_tag_a_slug(apps, schema_editor):
    """Tags made only of punctuation or emoji were saved with an empty slug, and every page showing one
    failed (its link has no address). Each gets "tag-<id>"; the forms now refuse such tags."""
    Tag = apps.get_model("taggit", "Tag")
    for tag in Tag.objects.filter(slug=""):
        tag.slug = f"tag-{tag.pk}"
        tag.save(update_fields=["slug"])


class Migration(migrations.Migration):
    dependencies = [
        ("postmortems", "0015_upload"),
        ("taggit", "0001_initial"),
    ]

    operations = [migrations.RunPython(give_every_tag_a_slug, migrations.RunPython.noop)]
