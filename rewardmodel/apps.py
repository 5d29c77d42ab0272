from django.apps import AppConfig


class RewardModelConfig(AppConfig):
    name = "rewardmodel"
    label = "rewardmodel"
    verbose_name = "Reward model"
    default_auto_field = "django.db.models.BigAutoField"
