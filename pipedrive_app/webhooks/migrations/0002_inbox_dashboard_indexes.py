from django.db import migrations, models

from pipedrive_app.core.online_indexes import AddIndexOnline


class Migration(migrations.Migration):
    # Built CONCURRENTLY on PostgreSQL: the receiver keeps storing deliveries meanwhile.
    atomic = False

    dependencies = [
        ("installations", "0002_company_settings"),
        ("webhooks", "0001_initial"),
    ]

    operations = [
        AddIndexOnline(
            model_name="inboxevent",
            index=models.Index(fields=["received_at"], name="webhooks_inbox_received"),
        ),
        AddIndexOnline(
            model_name="inboxevent",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["received_at"], name="webhooks_inbox_pending_at"
            ),
        ),
        AddIndexOnline(
            model_name="inboxevent",
            index=models.Index(
                condition=models.Q(("status", "dead")), fields=["received_at"], name="webhooks_inbox_dead_at"
            ),
        ),
        AddIndexOnline(
            model_name="inboxevent",
            index=models.Index(condition=models.Q(("status", "dead")), fields=["company"], name="webhooks_inbox_dead"),
        ),
    ]
