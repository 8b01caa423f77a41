"""Config fields that were renamed: the old name stays as an empty placeholder so that a config
file or a --config.<section>.<old>=... flag written for it fails up front, naming the new one."""
import ml_collections


def add_placeholders(section, renames):
    """renames: {old name: (new name, type)}."""
    for old, (_, field_type) in renames.items():
        section[old] = ml_collections.FieldReference(None, field_type=field_type)


def check_placeholders(prefix, section, renames):
    for old, (new, _) in renames.items():
        if section.get(old) is not None:
            raise ValueError(f"{prefix}.{old} was renamed {prefix}.{new} (its unit in the "
                             f"name): set {prefix}.{new}={section[old]!r} instead")
