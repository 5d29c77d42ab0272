import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0007_vote_change"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="acquisition",
            field=models.CharField(
                choices=[
                    ("random", "random"),
                    ("uncertainty", "uncertainty: the head's P(a > b) closest to 1/2"),
                    ("disagreement", "disagreement: the head's members disagree most (BALD)"),
                    ("diverse", "diverse: disagreement plus distance from what is labelled (BAL-PM style)"),
                ],
                default="random",
                help_text="Which train-split pairs the queue serves first, re-ordered after each head retrain. Held-out pairs always stay in random order.",
                max_length=16,
                verbose_name="acquisition strategy",
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="exploration_percent",
            field=models.PositiveSmallIntegerField(
                default=10,
                help_text="Share of the re-ordered train pairs placed at random, so the strategy never sees only its own picks.",
                validators=[django.core.validators.MaxValueValidator(100)],
            ),
        ),
    ]
