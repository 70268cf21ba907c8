"""Generated from plan.schema.json by osl_hooks.plan.write_validator_module(); do not edit."""
# ruff: noqa
SCHEMA_DIGEST = 'crc32:e33591e4:6673'
VERSION = "2.22.3"
import re

class JsonSchemaValueException(ValueError):
    """fastjsonschema's exception, defined here: validating a plan at start does not import fastjsonschema."""

    def __init__(self, message, value=None, name=None, definition=None, rule=None):
        super().__init__(message)
        self.message, self.value, self.name, self.definition, self.rule = message, value, name, definition, rule


JsonSchemaValuesException = JsonSchemaValueException


REGEX_PATTERNS = {
    '^/': re.compile('^/'),
    '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$': re.compile('^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\\Z'),
    '^[a-z0-9][a-z0-9._-]{0,79}$': re.compile('^[a-z0-9][a-z0-9._-]{0,79}\\Z')
}

NoneType = type(None)

def validate_https___osl_hooks_invalid_plan_v1_json(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'http://json-schema.org/draft-07/schema#', '$id': 'https://osl-hooks.invalid/plan/v1.json', 'title': 'osl-hooks start plan, versions 1 and 2', 'description': "Everything `osl-hooks start` needs to prepare one user's home. Built by the hub side, read by the engine.", 'type': 'object', 'additionalProperties': False, 'required': ['version'], 'if': {'required': ['retirement']}, 'then': {'properties': {'version': {'const': 2}}}, 'definitions': {'homePath': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'imagePath': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'script': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}, 'kernel': {'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, 'environment': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'target': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'built_prefix': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}}, 'properties': {'version': {'enum': [1, 2], 'description': 'plan format version; this engine reads versions 1 and 2 (2 adds retirement)'}, 'retirement': {'type': 'object', 'additionalProperties': False, 'required': ['offered', 'remove_after_days'], 'description': 'version 2: which envs the hub still offers anywhere, so a copy of any other env is retired', 'properties': {'offered': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, 'remove_after_days': {'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}}}, 'home': {'type': 'string', 'pattern': '^/', 'description': "an absolute path: the home volume's mount path (default: $HOME of the process)"}, 'envs_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'state_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'jupyter_data_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'environments': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'target': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/homePath'}, 'built_prefix': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath', 'description': 'the prefix the env was built at, when it differs from its source path'}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'$ref': '#/definitions/kernel'}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/script'}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}}, 'discover_user_envs': {'type': 'boolean', 'description': 'register kernels for envs the user created in envs_dir'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}, 'disk_margin_fraction': {'type': 'number', 'minimum': 0, 'maximum': 10, 'description': "extra free space required beyond an env's size, as a fraction of it"}, 'disk_margin_bytes': {'type': 'integer', 'minimum': 0, 'description': 'free space that must remain on the home volume after a copy'}, 'lock_timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds to wait for another start on the same home to finish'}}}, rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['version']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'http://json-schema.org/draft-07/schema#', '$id': 'https://osl-hooks.invalid/plan/v1.json', 'title': 'osl-hooks start plan, versions 1 and 2', 'description': "Everything `osl-hooks start` needs to prepare one user's home. Built by the hub side, read by the engine.", 'type': 'object', 'additionalProperties': False, 'required': ['version'], 'if': {'required': ['retirement']}, 'then': {'properties': {'version': {'const': 2}}}, 'definitions': {'homePath': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'imagePath': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'script': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}, 'kernel': {'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, 'environment': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'target': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'built_prefix': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}}, 'properties': {'version': {'enum': [1, 2], 'description': 'plan format version; this engine reads versions 1 and 2 (2 adds retirement)'}, 'retirement': {'type': 'object', 'additionalProperties': False, 'required': ['offered', 'remove_after_days'], 'description': 'version 2: which envs the hub still offers anywhere, so a copy of any other env is retired', 'properties': {'offered': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, 'remove_after_days': {'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}}}, 'home': {'type': 'string', 'pattern': '^/', 'description': "an absolute path: the home volume's mount path (default: $HOME of the process)"}, 'envs_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'state_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'jupyter_data_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'environments': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'target': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/homePath'}, 'built_prefix': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath', 'description': 'the prefix the env was built at, when it differs from its source path'}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'$ref': '#/definitions/kernel'}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/script'}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}}, 'discover_user_envs': {'type': 'boolean', 'description': 'register kernels for envs the user created in envs_dir'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}, 'disk_margin_fraction': {'type': 'number', 'minimum': 0, 'maximum': 10, 'description': "extra free space required beyond an env's size, as a fraction of it"}, 'disk_margin_bytes': {'type': 'integer', 'minimum': 0, 'description': 'free space that must remain on the home volume after a copy'}, 'lock_timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds to wait for another start on the same home to finish'}}}, rule='required')
        data_keys = set(data.keys())
        if "version" in data_keys:
            data_keys.remove("version")
            data__version = data["version"]
            if not (isinstance(data__version, (int, float)) and not isinstance(data__version, bool) and data__version == 1 or isinstance(data__version, (int, float)) and not isinstance(data__version, bool) and data__version == 2):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".version must be one of [1, 2]", value=data__version, name="" + (name_prefix or "data") + ".version", definition={'enum': [1, 2], 'description': 'plan format version; this engine reads versions 1 and 2 (2 adds retirement)'}, rule='enum')
        if "retirement" in data_keys:
            data_keys.remove("retirement")
            data__retirement = data["retirement"]
            if not isinstance(data__retirement, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".retirement must be object", value=data__retirement, name="" + (name_prefix or "data") + ".retirement", definition={'type': 'object', 'additionalProperties': False, 'required': ['offered', 'remove_after_days'], 'description': 'version 2: which envs the hub still offers anywhere, so a copy of any other env is retired', 'properties': {'offered': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, 'remove_after_days': {'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}}}, rule='type')
            data__retirement_is_dict = isinstance(data__retirement, dict)
            if data__retirement_is_dict:
                data__retirement__missing_keys = set(['offered', 'remove_after_days']) - data__retirement.keys()
                if data__retirement__missing_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".retirement must contain " + (str(sorted(data__retirement__missing_keys)) + " properties"), value=data__retirement, name="" + (name_prefix or "data") + ".retirement", definition={'type': 'object', 'additionalProperties': False, 'required': ['offered', 'remove_after_days'], 'description': 'version 2: which envs the hub still offers anywhere, so a copy of any other env is retired', 'properties': {'offered': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, 'remove_after_days': {'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}}}, rule='required')
                data__retirement_keys = set(data__retirement.keys())
                if "offered" in data__retirement_keys:
                    data__retirement_keys.remove("offered")
                    data__retirement__offered = data__retirement["offered"]
                    if not isinstance(data__retirement__offered, (list, tuple)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".retirement.offered must be array", value=data__retirement__offered, name="" + (name_prefix or "data") + ".retirement.offered", definition={'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, rule='type')
                    data__retirement__offered_is_list = isinstance(data__retirement__offered, (list, tuple))
                    if data__retirement__offered_is_list:
                        def fn(var): return frozenset(dict((k, fn(v)) for k, v in var.items()).items()) if hasattr(var, "items") else tuple(fn(v) for v in var) if isinstance(var, (dict, list)) else (bool, var) if isinstance(var, bool) else var
                        data__retirement__offered_len = len(data__retirement__offered)
                        if data__retirement__offered_len > len(set(fn(data__retirement__offered_x) for data__retirement__offered_x in data__retirement__offered)):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".retirement.offered must contain unique items", value=data__retirement__offered, name="" + (name_prefix or "data") + ".retirement.offered", definition={'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, rule='uniqueItems')
                        for data__retirement__offered_x, data__retirement__offered_item in enumerate(data__retirement__offered):
                            validate_https___osl_hooks_invalid_plan_v1_json__definitions_environment_properties_name(data__retirement__offered_item, custom_formats, (name_prefix or "data") + ".retirement.offered[{data__retirement__offered_x}]".format(**locals()))
                if "remove_after_days" in data__retirement_keys:
                    data__retirement_keys.remove("remove_after_days")
                    data__retirement__removeafterdays = data__retirement["remove_after_days"]
                    if not isinstance(data__retirement__removeafterdays, (int, float)) or isinstance(data__retirement__removeafterdays, bool):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".retirement.remove_after_days must be number", value=data__retirement__removeafterdays, name="" + (name_prefix or "data") + ".retirement.remove_after_days", definition={'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}, rule='type')
                    if isinstance(data__retirement__removeafterdays, (int, float)) and not isinstance(data__retirement__removeafterdays, bool):
                        if data__retirement__removeafterdays < 0:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".retirement.remove_after_days must be bigger than or equal to 0", value=data__retirement__removeafterdays, name="" + (name_prefix or "data") + ".retirement.remove_after_days", definition={'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}, rule='minimum')
                if data__retirement_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".retirement must not contain "+str(data__retirement_keys)+" properties", value=data__retirement, name="" + (name_prefix or "data") + ".retirement", definition={'type': 'object', 'additionalProperties': False, 'required': ['offered', 'remove_after_days'], 'description': 'version 2: which envs the hub still offers anywhere, so a copy of any other env is retired', 'properties': {'offered': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, 'remove_after_days': {'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}}}, rule='additionalProperties')
        if "home" in data_keys:
            data_keys.remove("home")
            data__home = data["home"]
            if not isinstance(data__home, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".home must be string", value=data__home, name="" + (name_prefix or "data") + ".home", definition={'type': 'string', 'pattern': '^/', 'description': "an absolute path: the home volume's mount path (default: $HOME of the process)"}, rule='type')
            if isinstance(data__home, str):
                if not REGEX_PATTERNS['^/'].search(data__home):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".home must match pattern ^/", value=data__home, name="" + (name_prefix or "data") + ".home", definition={'type': 'string', 'pattern': '^/', 'description': "an absolute path: the home volume's mount path (default: $HOME of the process)"}, rule='pattern')
        if "envs_dir" in data_keys:
            data_keys.remove("envs_dir")
            data__envsdir = data["envs_dir"]
            validate_https___osl_hooks_invalid_plan_v1_json__definitions_homepath(data__envsdir, custom_formats, (name_prefix or "data") + ".envs_dir")
        if "state_dir" in data_keys:
            data_keys.remove("state_dir")
            data__statedir = data["state_dir"]
            validate_https___osl_hooks_invalid_plan_v1_json__definitions_homepath(data__statedir, custom_formats, (name_prefix or "data") + ".state_dir")
        if "jupyter_data_dir" in data_keys:
            data_keys.remove("jupyter_data_dir")
            data__jupyterdatadir = data["jupyter_data_dir"]
            validate_https___osl_hooks_invalid_plan_v1_json__definitions_homepath(data__jupyterdatadir, custom_formats, (name_prefix or "data") + ".jupyter_data_dir")
        if "environments" in data_keys:
            data_keys.remove("environments")
            data__environments = data["environments"]
            if not isinstance(data__environments, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".environments must be array", value=data__environments, name="" + (name_prefix or "data") + ".environments", definition={'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'target': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/homePath'}, 'built_prefix': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath', 'description': 'the prefix the env was built at, when it differs from its source path'}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'$ref': '#/definitions/kernel'}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/script'}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}}, rule='type')
            data__environments_is_list = isinstance(data__environments, (list, tuple))
            if data__environments_is_list:
                data__environments_len = len(data__environments)
                for data__environments_x, data__environments_item in enumerate(data__environments):
                    validate_https___osl_hooks_invalid_plan_v1_json__definitions_environment(data__environments_item, custom_formats, (name_prefix or "data") + ".environments[{data__environments_x}]".format(**locals()))
        if "discover_user_envs" in data_keys:
            data_keys.remove("discover_user_envs")
            data__discoveruserenvs = data["discover_user_envs"]
            if not isinstance(data__discoveruserenvs, (bool)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".discover_user_envs must be boolean", value=data__discoveruserenvs, name="" + (name_prefix or "data") + ".discover_user_envs", definition={'type': 'boolean', 'description': 'register kernels for envs the user created in envs_dir'}, rule='type')
        if "setup_scripts" in data_keys:
            data_keys.remove("setup_scripts")
            data__setupscripts = data["setup_scripts"]
            if not isinstance(data__setupscripts, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".setup_scripts must be array", value=data__setupscripts, name="" + (name_prefix or "data") + ".setup_scripts", definition={'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}, rule='type')
            data__setupscripts_is_list = isinstance(data__setupscripts, (list, tuple))
            if data__setupscripts_is_list:
                data__setupscripts_len = len(data__setupscripts)
                for data__setupscripts_x, data__setupscripts_item in enumerate(data__setupscripts):
                    validate_https___osl_hooks_invalid_plan_v1_json__definitions_script(data__setupscripts_item, custom_formats, (name_prefix or "data") + ".setup_scripts[{data__setupscripts_x}]".format(**locals()))
        if "disk_margin_fraction" in data_keys:
            data_keys.remove("disk_margin_fraction")
            data__diskmarginfraction = data["disk_margin_fraction"]
            if not isinstance(data__diskmarginfraction, (int, float)) or isinstance(data__diskmarginfraction, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".disk_margin_fraction must be number", value=data__diskmarginfraction, name="" + (name_prefix or "data") + ".disk_margin_fraction", definition={'type': 'number', 'minimum': 0, 'maximum': 10, 'description': "extra free space required beyond an env's size, as a fraction of it"}, rule='type')
            if isinstance(data__diskmarginfraction, (int, float)) and not isinstance(data__diskmarginfraction, bool):
                if data__diskmarginfraction < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".disk_margin_fraction must be bigger than or equal to 0", value=data__diskmarginfraction, name="" + (name_prefix or "data") + ".disk_margin_fraction", definition={'type': 'number', 'minimum': 0, 'maximum': 10, 'description': "extra free space required beyond an env's size, as a fraction of it"}, rule='minimum')
                if data__diskmarginfraction > 10:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".disk_margin_fraction must be smaller than or equal to 10", value=data__diskmarginfraction, name="" + (name_prefix or "data") + ".disk_margin_fraction", definition={'type': 'number', 'minimum': 0, 'maximum': 10, 'description': "extra free space required beyond an env's size, as a fraction of it"}, rule='maximum')
        if "disk_margin_bytes" in data_keys:
            data_keys.remove("disk_margin_bytes")
            data__diskmarginbytes = data["disk_margin_bytes"]
            if not isinstance(data__diskmarginbytes, (int)) and not (isinstance(data__diskmarginbytes, float) and data__diskmarginbytes.is_integer()) or isinstance(data__diskmarginbytes, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".disk_margin_bytes must be integer", value=data__diskmarginbytes, name="" + (name_prefix or "data") + ".disk_margin_bytes", definition={'type': 'integer', 'minimum': 0, 'description': 'free space that must remain on the home volume after a copy'}, rule='type')
            if isinstance(data__diskmarginbytes, (int, float)) and not isinstance(data__diskmarginbytes, bool):
                if data__diskmarginbytes < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".disk_margin_bytes must be bigger than or equal to 0", value=data__diskmarginbytes, name="" + (name_prefix or "data") + ".disk_margin_bytes", definition={'type': 'integer', 'minimum': 0, 'description': 'free space that must remain on the home volume after a copy'}, rule='minimum')
        if "lock_timeout" in data_keys:
            data_keys.remove("lock_timeout")
            data__locktimeout = data["lock_timeout"]
            if not isinstance(data__locktimeout, (int, float)) or isinstance(data__locktimeout, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".lock_timeout must be number", value=data__locktimeout, name="" + (name_prefix or "data") + ".lock_timeout", definition={'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds to wait for another start on the same home to finish'}, rule='type')
            if isinstance(data__locktimeout, (int, float)) and not isinstance(data__locktimeout, bool):
                if data__locktimeout <= 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".lock_timeout must be bigger than 0", value=data__locktimeout, name="" + (name_prefix or "data") + ".lock_timeout", definition={'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds to wait for another start on the same home to finish'}, rule='exclusiveMinimum')
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", definition={'$schema': 'http://json-schema.org/draft-07/schema#', '$id': 'https://osl-hooks.invalid/plan/v1.json', 'title': 'osl-hooks start plan, versions 1 and 2', 'description': "Everything `osl-hooks start` needs to prepare one user's home. Built by the hub side, read by the engine.", 'type': 'object', 'additionalProperties': False, 'required': ['version'], 'if': {'required': ['retirement']}, 'then': {'properties': {'version': {'const': 2}}}, 'definitions': {'homePath': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'imagePath': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'script': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}, 'kernel': {'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, 'environment': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'target': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'built_prefix': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}}, 'properties': {'version': {'enum': [1, 2], 'description': 'plan format version; this engine reads versions 1 and 2 (2 adds retirement)'}, 'retirement': {'type': 'object', 'additionalProperties': False, 'required': ['offered', 'remove_after_days'], 'description': 'version 2: which envs the hub still offers anywhere, so a copy of any other env is retired', 'properties': {'offered': {'type': 'array', 'items': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'uniqueItems': True, 'description': 'the names of every env the hub configures, under any user, group, profile or option'}, 'remove_after_days': {'type': 'number', 'minimum': 0, 'description': 'days a retired, unchanged copy is kept before it is removed (0: at the next start)'}}}, 'home': {'type': 'string', 'pattern': '^/', 'description': "an absolute path: the home volume's mount path (default: $HOME of the process)"}, 'envs_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'state_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'jupyter_data_dir': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'environments': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'target': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/homePath'}, 'built_prefix': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath', 'description': 'the prefix the env was built at, when it differs from its source path'}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'$ref': '#/definitions/kernel'}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/script'}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}}, 'discover_user_envs': {'type': 'boolean', 'description': 'register kernels for envs the user created in envs_dir'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}, 'disk_margin_fraction': {'type': 'number', 'minimum': 0, 'maximum': 10, 'description': "extra free space required beyond an env's size, as a fraction of it"}, 'disk_margin_bytes': {'type': 'integer', 'minimum': 0, 'description': 'free space that must remain on the home volume after a copy'}, 'lock_timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds to wait for another start on the same home to finish'}}}, rule='additionalProperties')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data__missing_keys = set(['retirement']) - data.keys()
            if data__missing_keys:
                raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['retirement']}, rule='required')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "version" in data_keys:
                data_keys.remove("version")
                data__version = data["version"]
                if not (isinstance(data__version, (int, float)) and not isinstance(data__version, bool) and data__version == 2):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".version must be same as const definition: 2", value=data__version, name="" + (name_prefix or "data") + ".version", definition={'const': 2}, rule='const')
    return data

def validate_https___osl_hooks_invalid_plan_v1_json__definitions_script(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}, rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['path']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}, rule='required')
        data_keys = set(data.keys())
        if "path" in data_keys:
            data_keys.remove("path")
            data__path = data["path"]
            validate_https___osl_hooks_invalid_plan_v1_json__definitions_imagepath(data__path, custom_formats, (name_prefix or "data") + ".path")
        if "timeout" in data_keys:
            data_keys.remove("timeout")
            data__timeout = data["timeout"]
            if not isinstance(data__timeout, (int, float)) or isinstance(data__timeout, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".timeout must be number", value=data__timeout, name="" + (name_prefix or "data") + ".timeout", definition={'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, rule='type')
            if isinstance(data__timeout, (int, float)) and not isinstance(data__timeout, bool):
                if data__timeout <= 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".timeout must be bigger than 0", value=data__timeout, name="" + (name_prefix or "data") + ".timeout", definition={'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, rule='exclusiveMinimum')
        if "run" in data_keys:
            data_keys.remove("run")
            data__run = data["run"]
            if not (isinstance(data__run, str) and data__run == 'always' or isinstance(data__run, str) and data__run == 'once' or isinstance(data__run, str) and data__run == 'on_change'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".run must be one of ['always', 'once', 'on_change']", value=data__run, name="" + (name_prefix or "data") + ".run", definition={'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, rule='enum')
        if "on_failure" in data_keys:
            data_keys.remove("on_failure")
            data__onfailure = data["on_failure"]
            if not (isinstance(data__onfailure, str) and data__onfailure == 'continue' or isinstance(data__onfailure, str) and data__onfailure == 'fail'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".on_failure must be one of ['continue', 'fail']", value=data__onfailure, name="" + (name_prefix or "data") + ".on_failure", definition={'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}, rule='enum')
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}, rule='additionalProperties')
    return data

def validate_https___osl_hooks_invalid_plan_v1_json__definitions_imagepath(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (str)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be string", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, rule='type')
    if isinstance(data, str):
        if not REGEX_PATTERNS['^/'].search(data):
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must match pattern ^/", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, rule='pattern')
    return data

def validate_https___osl_hooks_invalid_plan_v1_json__definitions_environment(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'target': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'built_prefix': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}, rule='type')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "mode" in data_keys:
                data_keys.remove("mode")
                data__mode = data["mode"]
                if not (isinstance(data__mode, str) and data__mode == 'baked' or isinstance(data__mode, str) and data__mode == 'synced' or isinstance(data__mode, str) and data__mode == 'linked'):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".mode must be one of ['baked', 'synced', 'linked']", value=data__mode, name="" + (name_prefix or "data") + ".mode", definition={'enum': ['baked', 'synced', 'linked']}, rule='enum')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data__missing_keys = set(['source']) - data.keys()
            if data__missing_keys:
                raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['source']}, rule='required')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "mode" in data_keys:
                data_keys.remove("mode")
                data__mode = data["mode"]
                if not (isinstance(data__mode, str) and data__mode == 'user'):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".mode must be same as const definition: user", value=data__mode, name="" + (name_prefix or "data") + ".mode", definition={'const': 'user'}, rule='const')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        try:
            data_any_of_count1 = 0
            if not data_any_of_count1:
                try:
                    data_is_dict = isinstance(data, dict)
                    if data_is_dict:
                        data__missing_keys = set(['source']) - data.keys()
                        if data__missing_keys:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['source']}, rule='required')
                    data_any_of_count1 += 1
                except (JsonSchemaValueException, JsonSchemaValuesException): pass
            if not data_any_of_count1:
                try:
                    data_is_dict = isinstance(data, dict)
                    if data_is_dict:
                        data__missing_keys = set(['built_prefix']) - data.keys()
                        if data__missing_keys:
                            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['built_prefix']}, rule='required')
                    data_any_of_count1 += 1
                except (JsonSchemaValueException, JsonSchemaValuesException): pass
            if not data_any_of_count1:
                raise JsonSchemaValueException("" + (name_prefix or "data") + " cannot be validated by any definition", value=data, name="" + (name_prefix or "data") + "", definition={'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}, rule='anyOf')
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
        else:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must NOT match a disallowed definition", value=data, name="" + (name_prefix or "data") + "", definition={'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}, rule='not')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "mode" in data_keys:
                data_keys.remove("mode")
                data__mode = data["mode"]
                if not (isinstance(data__mode, str) and data__mode == 'baked'):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".mode must be same as const definition: baked", value=data__mode, name="" + (name_prefix or "data") + ".mode", definition={'const': 'baked'}, rule='const')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        try:
            data_is_dict = isinstance(data, dict)
            if data_is_dict:
                data__missing_keys = set(['target']) - data.keys()
                if data__missing_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['target']}, rule='required')
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
        else:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must NOT match a disallowed definition", value=data, name="" + (name_prefix or "data") + "", definition={'not': {'required': ['target']}}, rule='not')
    try:
        try:
            data_is_dict = isinstance(data, dict)
            if data_is_dict:
                data_keys = set(data.keys())
                if "mode" in data_keys:
                    data_keys.remove("mode")
                    data__mode = data["mode"]
                    if not (isinstance(data__mode, str) and data__mode == 'linked'):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".mode must be same as const definition: linked", value=data__mode, name="" + (name_prefix or "data") + ".mode", definition={'const': 'linked'}, rule='const')
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
        else:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must NOT match a disallowed definition", value=data, name="" + (name_prefix or "data") + "", definition={'not': {'properties': {'mode': {'const': 'linked'}}}}, rule='not')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        try:
            data_is_dict = isinstance(data, dict)
            if data_is_dict:
                data__missing_keys = set(['link_threshold']) - data.keys()
                if data__missing_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['link_threshold']}, rule='required')
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
        else:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must NOT match a disallowed definition", value=data, name="" + (name_prefix or "data") + "", definition={'not': {'required': ['link_threshold']}}, rule='not')
    try:
        try:
            data_is_dict = isinstance(data, dict)
            if data_is_dict:
                data_keys = set(data.keys())
                if "mode" in data_keys:
                    data_keys.remove("mode")
                    data__mode = data["mode"]
                    if not (isinstance(data__mode, str) and data__mode == 'synced'):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".mode must be same as const definition: synced", value=data__mode, name="" + (name_prefix or "data") + ".mode", definition={'const': 'synced'}, rule='const')
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
        else:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must NOT match a disallowed definition", value=data, name="" + (name_prefix or "data") + "", definition={'not': {'properties': {'mode': {'const': 'synced'}}}}, rule='not')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        try:
            data_is_dict = isinstance(data, dict)
            if data_is_dict:
                data__missing_keys = set(['first_copy']) - data.keys()
                if data__missing_keys:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'required': ['first_copy']}, rule='required')
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
        else:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must NOT match a disallowed definition", value=data, name="" + (name_prefix or "data") + "", definition={'not': {'required': ['first_copy']}}, rule='not')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['name', 'mode']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'target': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'built_prefix': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}, rule='required')
        data_keys = set(data.keys())
        if "name" in data_keys:
            data_keys.remove("name")
            data__name = data["name"]
            if not isinstance(data__name, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".name must be string", value=data__name, name="" + (name_prefix or "data") + ".name", definition={'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, rule='type')
            if isinstance(data__name, str):
                if not REGEX_PATTERNS['^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'].search(data__name):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".name must match pattern ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", value=data__name, name="" + (name_prefix or "data") + ".name", definition={'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, rule='pattern')
        if "mode" in data_keys:
            data_keys.remove("mode")
            data__mode = data["mode"]
            if not (isinstance(data__mode, str) and data__mode == 'baked' or isinstance(data__mode, str) and data__mode == 'synced' or isinstance(data__mode, str) and data__mode == 'linked' or isinstance(data__mode, str) and data__mode == 'user'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".mode must be one of ['baked', 'synced', 'linked', 'user']", value=data__mode, name="" + (name_prefix or "data") + ".mode", definition={'enum': ['baked', 'synced', 'linked', 'user']}, rule='enum')
        if "source" in data_keys:
            data_keys.remove("source")
            data__source = data["source"]
            validate_https___osl_hooks_invalid_plan_v1_json__definitions_imagepath(data__source, custom_formats, (name_prefix or "data") + ".source")
        if "target" in data_keys:
            data_keys.remove("target")
            data__target = data["target"]
            validate_https___osl_hooks_invalid_plan_v1_json__definitions_homepath(data__target, custom_formats, (name_prefix or "data") + ".target")
        if "built_prefix" in data_keys:
            data_keys.remove("built_prefix")
            data__builtprefix = data["built_prefix"]
            validate_https___osl_hooks_invalid_plan_v1_json__definitions_imagepath(data__builtprefix, custom_formats, (name_prefix or "data") + ".built_prefix")
        if "link_threshold" in data_keys:
            data_keys.remove("link_threshold")
            data__linkthreshold = data["link_threshold"]
            if not isinstance(data__linkthreshold, (int)) and not (isinstance(data__linkthreshold, float) and data__linkthreshold.is_integer()) or isinstance(data__linkthreshold, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".link_threshold must be integer", value=data__linkthreshold, name="" + (name_prefix or "data") + ".link_threshold", definition={'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, rule='type')
            if isinstance(data__linkthreshold, (int, float)) and not isinstance(data__linkthreshold, bool):
                if data__linkthreshold < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".link_threshold must be bigger than or equal to 1", value=data__linkthreshold, name="" + (name_prefix or "data") + ".link_threshold", definition={'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, rule='minimum')
        if "first_copy" in data_keys:
            data_keys.remove("first_copy")
            data__firstcopy = data["first_copy"]
            if not (isinstance(data__firstcopy, str) and data__firstcopy == 'background' or isinstance(data__firstcopy, str) and data__firstcopy == 'before_ready'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".first_copy must be one of ['background', 'before_ready']", value=data__firstcopy, name="" + (name_prefix or "data") + ".first_copy", definition={'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, rule='enum')
        if "kernel" in data_keys:
            data_keys.remove("kernel")
            data__kernel = data["kernel"]
            data__kernel_one_of_count2 = 0
            if data__kernel_one_of_count2 < 2:
                try:
                    validate_https___osl_hooks_invalid_plan_v1_json__definitions_kernel(data__kernel, custom_formats, (name_prefix or "data") + ".kernel")
                    data__kernel_one_of_count2 += 1
                except (JsonSchemaValueException, JsonSchemaValuesException): pass
            if data__kernel_one_of_count2 < 2:
                try:
                    if not (isinstance(data__kernel, bool) and data__kernel is False):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".kernel must be same as const definition: False", value=data__kernel, name="" + (name_prefix or "data") + ".kernel", definition={'const': False}, rule='const')
                    data__kernel_one_of_count2 += 1
                except (JsonSchemaValueException, JsonSchemaValuesException): pass
            if data__kernel_one_of_count2 != 1:
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".kernel must be valid exactly by one definition" + (" (" + str(data__kernel_one_of_count2) + " matches found)"), value=data__kernel, name="" + (name_prefix or "data") + ".kernel", definition={'oneOf': [{'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, rule='oneOf')
        if "setup_scripts" in data_keys:
            data_keys.remove("setup_scripts")
            data__setupscripts = data["setup_scripts"]
            if not isinstance(data__setupscripts, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".setup_scripts must be array", value=data__setupscripts, name="" + (name_prefix or "data") + ".setup_scripts", definition={'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}, rule='type')
            data__setupscripts_is_list = isinstance(data__setupscripts, (list, tuple))
            if data__setupscripts_is_list:
                data__setupscripts_len = len(data__setupscripts)
                for data__setupscripts_x, data__setupscripts_item in enumerate(data__setupscripts):
                    validate_https___osl_hooks_invalid_plan_v1_json__definitions_script(data__setupscripts_item, custom_formats, (name_prefix or "data") + ".setup_scripts[{data__setupscripts_x}]".format(**locals()))
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'required': ['name', 'mode'], 'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, 'mode': {'enum': ['baked', 'synced', 'linked', 'user']}, 'source': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'target': {'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, 'built_prefix': {'type': 'string', 'pattern': '^/', 'description': "an absolute path in the image (the single-user container's filesystem)"}, 'link_threshold': {'type': 'integer', 'minimum': 1, 'description': "linked mode: files of at least this many bytes become symlinks into the image's env, unless they must be real (default 1: every file)"}, 'first_copy': {'enum': ['background', 'before_ready'], 'description': "synced mode: whether a first copy into the home is made while the server starts from the image's env ('background', when the delivery runs the server command) or before the server is ready (default background)"}, 'kernel': {'oneOf': [{'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, {'const': False}], 'description': 'kernel settings, or false for no kernel'}, 'setup_scripts': {'type': 'array', 'items': {'type': 'object', 'additionalProperties': False, 'required': ['path'], 'properties': {'path': {'$ref': 'https://osl-hooks.invalid/plan/v1.json#/definitions/imagePath'}, 'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'description': 'seconds before the script (and its children) is killed'}, 'run': {'enum': ['always', 'once', 'on_change'], 'description': "always: every start; once: first successful run only; on_change: when the script's content changes"}, 'on_failure': {'enum': ['continue', 'fail'], 'description': 'continue: warn and start the server anyway; fail: fail the start'}}}}}, 'allOf': [{'if': {'properties': {'mode': {'enum': ['baked', 'synced', 'linked']}}}, 'then': {'required': ['source']}}, {'if': {'properties': {'mode': {'const': 'user'}}}, 'then': {'not': {'anyOf': [{'required': ['source']}, {'required': ['built_prefix']}]}}}, {'if': {'properties': {'mode': {'const': 'baked'}}}, 'then': {'not': {'required': ['target']}}}, {'if': {'not': {'properties': {'mode': {'const': 'linked'}}}}, 'then': {'not': {'required': ['link_threshold']}}}, {'if': {'not': {'properties': {'mode': {'const': 'synced'}}}}, 'then': {'not': {'required': ['first_copy']}}}]}, rule='additionalProperties')
    return data

def validate_https___osl_hooks_invalid_plan_v1_json__definitions_kernel(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data_keys = set(data.keys())
        if "name" in data_keys:
            data_keys.remove("name")
            data__name = data["name"]
            if not isinstance(data__name, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".name must be string", value=data__name, name="" + (name_prefix or "data") + ".name", definition={'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, rule='type')
            if isinstance(data__name, str):
                if not REGEX_PATTERNS['^[a-z0-9][a-z0-9._-]{0,79}$'].search(data__name):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".name must match pattern ^[a-z0-9][a-z0-9._-]{0,79}$", value=data__name, name="" + (name_prefix or "data") + ".name", definition={'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, rule='pattern')
        if "display_name" in data_keys:
            data_keys.remove("display_name")
            data__displayname = data["display_name"]
            if not isinstance(data__displayname, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".display_name must be string", value=data__displayname, name="" + (name_prefix or "data") + ".display_name", definition={'type': 'string', 'minLength': 1, 'maxLength': 200}, rule='type')
            if isinstance(data__displayname, str):
                data__displayname_len = len(data__displayname)
                if data__displayname_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".display_name must be longer than or equal to 1 characters", value=data__displayname, name="" + (name_prefix or "data") + ".display_name", definition={'type': 'string', 'minLength': 1, 'maxLength': 200}, rule='minLength')
                if data__displayname_len > 200:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".display_name must be shorter than or equal to 200 characters", value=data__displayname, name="" + (name_prefix or "data") + ".display_name", definition={'type': 'string', 'minLength': 1, 'maxLength': 200}, rule='maxLength')
        if "env" in data_keys:
            data_keys.remove("env")
            data__env = data["env"]
            if not isinstance(data__env, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".env must be object", value=data__env, name="" + (name_prefix or "data") + ".env", definition={'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}, rule='type')
            data__env_is_dict = isinstance(data__env, dict)
            if data__env_is_dict:
                data__env_keys = set(data__env.keys())
                for data__env_key in data__env_keys:
                    if data__env_key not in []:
                        data__env_value = data__env.get(data__env_key)
                        if not isinstance(data__env_value, (str)):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".env.{data__env_key}".format(**locals()) + " must be string", value=data__env_value, name="" + (name_prefix or "data") + ".env.{data__env_key}".format(**locals()) + "", definition={'type': 'string'}, rule='type')
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'object', 'additionalProperties': False, 'properties': {'name': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9._-]{0,79}$', 'description': "a kernelspec name: lower-case letters, digits, '.', '_' and '-'"}, 'display_name': {'type': 'string', 'minLength': 1, 'maxLength': 200}, 'env': {'type': 'object', 'additionalProperties': {'type': 'string'}, 'description': 'extra environment variables for the kernel; ${VAR} expands when the kernel starts'}}}, rule='additionalProperties')
    return data

def validate_https___osl_hooks_invalid_plan_v1_json__definitions_homepath(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (str)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be string", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, rule='type')
    if isinstance(data, str):
        data_len = len(data)
        if data_len < 1:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must be longer than or equal to 1 characters", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'string', 'minLength': 1, 'description': "a path inside the home volume: relative to the home, '~/...', or absolute inside the home"}, rule='minLength')
    return data

def validate_https___osl_hooks_invalid_plan_v1_json__definitions_environment_properties_name(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (str)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be string", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, rule='type')
    if isinstance(data, str):
        if not REGEX_PATTERNS['^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'].search(data):
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must match pattern ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", value=data, name="" + (name_prefix or "data") + "", definition={'type': 'string', 'pattern': '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', 'description': "an env name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters (no '/' and no '..')"}, rule='pattern')
    return data

validate = validate_https___osl_hooks_invalid_plan_v1_json
