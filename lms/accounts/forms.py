from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from lms.accounts.models import ROLES
from lms.accounts.people import ROLE_NAMES
from lms.audiences import AUDIENCES


class LoginForm(FlaskForm):
    username = StringField(_l("账号"), validators=[DataRequired(_l("请输入账号")), Length(max=64, message=_l("账号太长"))])
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码")), Length(max=128, message=_l("密码太长"))])
    submit = SubmitField(_l("登录"))


# ---- people management (lms/accounts/people_routes.py) -----------------------------------------


def _choices(pairs, anything=None):
    """SelectChoice list of (value, label) pairs, led by an "any" choice when `anything` labels one."""
    return ([SelectChoice("", anything)] if anything else []) + [SelectChoice(value, label) for value, label in pairs]


def _role_choices(roles=ROLES, anything=None):
    return _choices([(role, ROLE_NAMES[role]) for role in roles], anything)


def _audience_choices(anything=None):
    return _choices(AUDIENCES.items(), anything)


class PeopleFilterForm(FlaskForm):
    """GET form (it changes nothing), so CSRF is off; every bad field is still named."""

    class Meta:
        csrf = False

    q = StringField(_l("搜索"), validators=[Optional(), Length(max=80, message=_l("最多 80 个字"))],
                    description=_l("姓名、账号或手机号的一部分"))
    unit = StringField(_l("单位"), validators=[Optional(), Length(max=64, message=_l("单位编码太长"))],
                       description=_l("输入单位名称或编码的一部分查找；含下级单位"))
    audience = SelectField(_l("人群"), validators=[Optional()])
    role = SelectField(_l("角色"), validators=[Optional()])
    active = SelectField(_l("状态"), validators=[Optional()],
                         choices=_choices([("1", _l("在用")), ("0", _l("已停用"))], _l("全部")))
    must_change = BooleanField(_l("只看需改密码的"))
    after_name = HiddenField()
    after_id = IntegerField(validators=[Optional(), NumberRange(min=1)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.audience.choices = _audience_choices(_l("全部"))
        self.role.choices = _role_choices(anything=_l("全部"))


class PersonForm(FlaskForm):
    full_name = StringField(_l("姓名"), validators=[DataRequired(_l("请填写姓名")), Length(max=80, message=_l("姓名最多 80 个字"))])
    phone = StringField(_l("手机号"), validators=[Optional(), Length(max=24, message=_l("手机号太长"))])
    audience = SelectField(_l("人群"), validators=[DataRequired(_l("请选择人群"))])
    role = SelectField(_l("角色"), validators=[DataRequired(_l("请选择角色"))])
    unit = StringField(_l("单位"), validators=[DataRequired(_l("请选择单位")), Length(max=64, message=_l("单位编码太长"))],
                       description=_l("输入单位名称或编码的一部分查找"))
    submit = SubmitField(_l("保存"))

    def __init__(self, *args, roles=ROLES, **kwargs):
        super().__init__(*args, **kwargs)
        self.audience.choices = _audience_choices()
        self.role.choices = _role_choices(roles)


class NewPersonForm(PersonForm):
    username = StringField(_l("账号"), validators=[DataRequired(_l("请填写账号")), Length(max=64, message=_l("账号最多 64 位"))],
                           description=_l("登录用的名字：字母、数字和 . _ @ -"))
    password = PasswordField(_l("初始密码"), validators=[Optional(), Length(min=8, max=128, message=_l("密码 8–128 位"))],
                             description=_l("不填则自动生成（只显示一次），本人首次登录时须修改"),
                             render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("创建"))


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class ImportPeopleForm(FlaskForm):
    file = FileField(_l("名单文件（.csv 或 .xlsx）"), validators=[FileRequired(_l("请选择文件"))])
    dry_run = BooleanField(_l("只检查，不导入"))
    submit = SubmitField(_l("检查并导入"))


class OwnPasswordForm(FlaskForm):
    current_password = PasswordField(_l("当前密码"), validators=[DataRequired(_l("请输入当前密码")), Length(max=128, message=_l("密码太长"))],
                                     render_kw={"autocomplete": "current-password"})
    password = PasswordField(_l("新密码"), validators=[DataRequired(_l("请输入新密码")),
                                                      Length(min=8, max=128, message=_l("新密码 8–128 位"))],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("再输一次新密码"), validators=[DataRequired(_l("请再输一次新密码")),
                                                           EqualTo("password", message=_l("两次输入的新密码不一样"))],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("修改密码"))


# ---- units (lms/accounts/unit_routes.py) ---------------------------------------------------------
# Rules that need the database (a code in use, a parent out of scope, a move under a descendant) are
# lms/accounts/units.py's; the view puts its UnitError on the field the error names.

def unit_kind_choices():
    from lms.accounts.units import KINDS

    return [(kind, label) for kind, label in KINDS.items()]


class UnitForm(FlaskForm):
    code = StringField(_l("单位编码"), validators=[DataRequired(_l("请填写单位编码")), Length(max=64, message=_l("单位编码最多 64 个字符"))],
                       description=_l("唯一的编码，例如 guixi-sq1；保存后不能修改。不能含 /、空格。"))
    name = StringField(_l("单位名称"), validators=[DataRequired(_l("请填写单位名称")), Length(max=120, message=_l("单位名称最多 120 个字"))])
    kind = SelectField(_l("类型"), choices=unit_kind_choices)
    parent = StringField(_l("上级单位"), validators=[Length(max=64)],
                         description=_l("输入名称或编码的一部分来选择；县级管理员留空表示顶级单位。"))
    submit = SubmitField(_l("添加单位"))


class UnitEditForm(FlaskForm):
    name = StringField(_l("单位名称"), validators=[DataRequired(_l("请填写单位名称")), Length(max=120, message=_l("单位名称最多 120 个字"))])
    kind = SelectField(_l("类型"), choices=unit_kind_choices)
    submit = SubmitField(_l("保存名称和类型"))


class UnitMoveForm(FlaskForm):
    parent = StringField(_l("新的上级单位"), validators=[DataRequired(_l("请选择新的上级单位")), Length(max=64)],
                         description=_l("输入名称或编码的一部分来选择。下级单位、人员和学时记录随单位一起移动。"))
    submit = SubmitField(_l("移动"))


class UnitImportForm(FlaskForm):
    file = FileField(_l("单位表（CSV 或 Excel）"), validators=[FileRequired(_l("请选择要导入的文件")),
                                                     FileAllowed(["csv", "xlsx"], _l("只支持 .csv 或 .xlsx 文件"))])
    submit = SubmitField(_l("检查文件"))


class UnitImportConfirmForm(FlaskForm):
    token = HiddenField()
    submit = SubmitField(_l("确认导入"))
