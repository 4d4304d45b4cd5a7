"""The demo district's stories: realistic petitions driven through the real
`Cases` commands, along every path of the lifecycle.

The stories follow the five reports in the domain brief: a rooftop leak caused
by an illegal structure, with the township blowing the whistle for housing,
urban management and the police station (Tianchang); a compound without
property management (Sanming, Mawei); cars blocking a lane and a water-pipe
quarrel between floors (Jiangsu's grid leaders); a "love station" suggestion a
city secretary took on himself, and care for empty-nest elders (Lüliang);
dog-walking rules and kitchen fumes (Tianchang); and the everyday rest.

Each case's script of (time, command) is planned first; then every command
of every case runs in global time order with the application's clock set to
that time, so the log reads in time order and every limit is judged on the
day it was acted on. Nothing after `now` runs: recent cases stay open at the
stage they had reached, beside older ones left stuck and overdue.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from cases.actor import Actor
from cases.calendar import is_working_day
from cases.clock import CHINA, local_date
from cases.vocabulary import FeedbackMethod, HandlingType, Role, Satisfaction, SuggestionOutcome, Tier
from commands.cases import Cases

DAYS = 120  # how far back the demo's cases reach

# People the reference model does not load (demo_district.json lists them).
CLERK = Actor("CL001", Role.INTAKE_CLERK)  # 民情信息员
OPERATOR = Actor("CL002", Role.INTAKE_CLERK)  # 12345话务员
SUPERVISORS = (Actor("SV001", Role.SUPERVISION), Actor("SV002", Role.SUPERVISION))
SUPERVISOR_NAMES = {"SV001": "督查室", "SV002": "区纪委监委"}

PATHS: dict[str, tuple[HandlingType, Tier]] = {
    "immediate": (HandlingType.IMMEDIATE, Tier.SMALL),  # 即办件, 小事立马办
    "committed": (HandlingType.COMMITTED, Tier.SMALL),  # 承诺件
    "supplement": (HandlingType.SUPPLEMENT, Tier.SMALL),  # 补办件
    "big": (HandlingType.COMMITTED, Tier.BIG),  # 大事联动会商办
    "escalated": (HandlingType.ESCALATED, Tier.BIG),  # 上报件
    "hard": (HandlingType.COMMITTED, Tier.HARD),  # 难事包案重点办
    "suggestion": (HandlingType.SUGGESTION, Tier.SMALL),  # 建议件
}
PATH_WEIGHTS = {
    "immediate": 22,
    "committed": 25,
    "supplement": 6,
    "big": 15,
    "escalated": 6,
    "hard": 8,
    "suggestion": 18,
}
SATISFACTION = ((Satisfaction.SATISFIED, 95), (Satisfaction.BASICALLY_SATISFIED, 3.5), (Satisfaction.DISSATISFIED, 1.5))


# --- the stories' words ------------------------------------------------------


@dataclass(frozen=True)
class Theme:
    """One kind of petition, with the words its case is written in.
    Placeholders: {who} {via} {place} {room} {floor} {road} {compound} {n}."""

    key: str
    category: str
    paths: frozenset[str]
    titles: tuple[str, ...]
    details: tuple[str, ...]
    measures: tuple[str, ...] = ()
    done: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()  # whom a township whistles; the first leads
    why: str = ""  # why a grid cannot solve it alone
    material: str = "现场照片和房屋信息"  # what a 补办件 waits for
    adopted: tuple[str, ...] = ()
    answered: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # preferred channels, if any
    where: str = "any"  # "urban": compounds with property companies; "rural": villages


def _theme(key: str, category: str, paths: str, **words: Any) -> Theme:
    return Theme(key, category, frozenset(paths.split()), **words)


THEMES: tuple[Theme, ...] = (
    _theme(
        "roof_leak",
        "illegal_building",
        "big escalated hard",
        where="urban",
        titles=("顶楼违章搭建导致楼顶渗水", "违建破坏屋面防水层，住户家中渗水", "楼顶加盖阳光房致下层住户漏水"),
        details=(
            "{who}{via}反映：{place}顶楼业主在楼顶违章搭建阳光房，施工时破坏了屋面防水层，"
            "近{n}周每逢下雨{room}天花板渗水、墙皮脱落，多次与搭建业主协商未果，要求拆除违建并维修屋面。",
            "{who}{via}反映：{place}楼顶被个别业主加盖彩钢棚，雨水顺着墙体渗进楼下住户家中，"
            "电线受潮存在安全隐患，希望有关部门尽快处理。",
        ),
        measures=(
            "城管部门依法拆除楼顶违章搭建；住建部门督促搭建业主承担费用、修复屋面防水层；派出所做好双方调解",
            "限期责令业主自行拆除违建，逾期由城管强制拆除；住建部门组织专业队伍重做屋面防水",
        ),
        done=(
            "楼顶违建已拆除，屋面防水层重新铺设并做闭水试验，受损住户天花板已修复粉刷。",
            "搭建业主已自行拆除彩钢棚，屋面防水修复完毕，连续两场降雨后未再渗水。",
        ),
        failures=("下雨后{room}天花板仍有渗水，防水层修复不到位", "违建只拆了一半，楼顶仍有彩钢棚骨架"),
        departments=("zhujian", "chengguan", "gongan"),
        why="业主违章搭建导致居民住宅楼顶渗水，涉及违建拆除、房屋修缮和邻里矛盾，社区无法单独解决",
        channels=("hotline_12345", "door_to_door", "hotline"),
    ),
    _theme(
        "no_property",
        "property",
        "big hard committed supplement",
        where="urban",
        titles=("小区没有物业管理，卫生安全无人管", "老旧小区失管，居民要求引进物业", "小区公共设施无人维护"),
        details=(
            "{who}{via}反映：{compound}交房后一直没有物业管理，楼道卫生无人打扫，公共照明坏了无人维修，"
            "外来人员随意进出，业主希望社区牵头引进物业公司。",
            "{who}{via}反映：{compound}原物业撤场已{n}个月，垃圾堆积、电梯停运、车位无人规划，居民生活很不方便。",
        ),
        measures=(
            "社区与业主代表签订委托书，按规定程序公开选聘物业服务企业，指导成立业主委员会",
            "成立小区临时管理小组，先行保洁和门岗服务，同步开展物业选聘表决",
        ),
        done=(
            "经业主表决，物业公司已入驻，业委会成立，楼道保洁、门岗和电梯维保恢复正常。",
            "临时管理小组已到位，新物业以超过80%的赞成率入驻，车位规划同步启动。",
        ),
        failures=("物业入驻后门岗仍然无人值守", "楼道保洁一周才一次，和承诺不符"),
        departments=("zhujian", "chengguan", "minzheng"),
        why="小区长期失管，引进物业须住建部门指导选聘、成立业委会，涉及多方利益",
        material="业主代表委托书和业主名册",
        channels=("neighbour_talk", "forum", "door_to_door", "online"),
    ),
    _theme(
        "parking_block",
        "parking",
        "immediate committed big",
        where="urban",
        titles=("违停车辆堵住小区通道", "消防通道被私家车长期占用", "路边违停严重影响居民出行"),
        details=(
            "{who}{via}反映：{road}靠近{compound}的路段每天傍晚有好几辆车违停，堵住小区出入通道，"
            "最近天天下雨，路本来就不好走，老人孩子出行很不方便。",
            "{who}{via}反映：{place}楼前消防通道长期被私家车占用，一旦发生火情消防车进不来，存在较大安全隐患。",
        ),
        measures=(
            "配合交警劝离、处罚违停车辆，施划禁停标线并增设隔离桩",
            "物业在通道口加装道闸，网格员晚高峰定时巡查",
        ),
        done=(
            "网格长赶在晚高峰前配合交警疏散违停车辆，通道恢复畅通，已施划禁停标线。",
            "消防通道已清理，加装隔离桩和警示牌，网格员每天晚高峰巡查。",
        ),
        failures=("晚上仍有车辆停放堵塞通道", "隔离桩被人挪开，又有车停进来"),
        departments=("gongan", "chengguan", "jiaotong"),
        why="违停车辆涉及交通执法，需公安交警和城管联合处置",
        channels=("hotline_12345", "call_110", "online", "hotline"),
    ),
    _theme(
        "love_station",
        "proposal",
        "suggestion",
        titles=("建议设立爱心驿站", "建议为环卫工人设置歇脚休息点"),
        details=(
            "{who}{via}建议：在社区附近合适地段设立一个爱心驿站，给过往老年人、残疾人，"
            "特别是环卫一线保洁人员，提供临时避风雨的休息场所。",
            "{who}{via}建议：{road}一带环卫工人中午没有地方热饭喝水，希望依托沿街门店设置爱心歇脚点。",
        ),
        adopted=(
            "建议已采纳：依托{compound}附近沿街门店设立爱心驿站，配备饮水机、微波炉和急救药箱，已投入使用。",
            "建议已采纳：全区统筹设立爱心驿站，首批已挂牌运行，环卫工人可免费歇脚、热饭、饮水。",
        ),
        answered=("已答复：附近党群服务站已开放休息区，欢迎环卫工人和过往群众使用。",),
        channels=("deputies_station", "deputies_studio", "forum"),
    ),
    _theme(
        "empty_nest",
        "elderly",
        "committed big hard suggestion",
        titles=("空巢老人日常照料无人管", "独居老人摔倒无人知晓", "希望社区提供居家养老上门服务"),
        details=(
            "{who}{via}反映：{place}有{n}户空巢老人，子女都在外地工作，老人买菜做饭、看病拿药都有困难，"
            "希望社区提供居家养老上门服务。",
            "{who}{via}反映：楼上独居老人今年八十多岁，行动不便，前几天在家摔倒两个小时才被发现，希望社区多关心。",
        ),
        measures=(
            "引入养老服务机构入驻社区，社区卫生服务中心开展健康巡访，对行动不便的老人上门问诊",
            "建立空巢老人台账，网格员每周上门探访，安装紧急呼叫设备",
        ),
        done=(
            "养老服务机构已与社区签订协议入驻，建立空巢老人台账，医务人员每周健康巡访，日间照料中心恢复助餐。",
            "已为独居老人安装一键呼叫设备，网格员结对每周探访，社区医生签约上门服务。",
        ),
        failures=("说好的每周探访，这两周没人来",),
        departments=("minzheng", "weijian"),
        why="居家养老服务需民政、卫健部门统筹资源，社区力量不足",
        adopted=("建议已采纳：社区引入养老服务机构，开设老年人日间照料中心和长者食堂。",),
        answered=("已答复：可申请区居家养老服务补贴，社区已协助老人办理。",),
        channels=("deputies_station", "door_to_door", "neighbour_talk", "hotline_12345"),
    ),
    _theme(
        "dogs",
        "pets",
        "committed big suggestion",
        where="urban",
        titles=("小区遛狗不牵绳，担心伤人", "犬只粪便无人清理", "建议加强文明养犬管理"),
        details=(
            "{who}{via}反映：{compound}部分居民遛狗不拴绳，大型犬在儿童游乐区追逐，前几天有孩子被吓哭，"
            "希望加强文明养犬管理，防止宠物伤人。",
            "{who}{via}反映：{place}楼下草坪狗粪随处可见，夏天臭味很大，养犬人不清理。",
        ),
        measures=("联合派出所、城管开展为期一周的文明养犬专项执法行动，张贴告示、登记犬只",),
        done=("已开展为期一周的专项治理，登记犬只{n}条，劝导不文明养犬行为，设置宠物粪便收集箱。",),
        failures=("早晚仍有人遛狗不牵绳",),
        departments=("gongan", "chengguan"),
        why="不文明养犬须公安、城管依法处置，社区只能劝导",
        adopted=("建议已采纳：社区制定文明养犬公约，派出所联合城管开展专项治理行动。",),
        answered=("已答复：已将文明养犬宣传纳入楼道公告，发现违规可随时拨打热线。",),
    ),
    _theme(
        "water_pipe",
        "neighbour_dispute",
        "immediate committed supplement",
        where="urban",
        titles=("顶楼住户加装雨水管遭一楼反对", "楼上卫生间漏水殃及楼下", "楼上楼下因水管改造发生纠纷"),
        details=(
            "{who}{via}反映：{place}老旧小区改造中，顶楼住户希望加装一根雨水管，一楼住户担心开挖面积过大"
            "影响生活，双方互不相让，多次发生争吵。",
            "{who}{via}反映：楼上卫生间水管老化漏水，{room}天花板长期潮湿发霉，楼上住户不配合检修。",
        ),
        measures=(
            "网格长把双方、施工单位和物业请到网格微家协商，施工方出具专业方案，缩小开挖范围",
            "物业上门检测漏点，楼上住户配合更换老化水管，楼下天花板由楼上住户负责修复",
        ),
        done=(
            "经网格长耐心调解，双方达成一致，施工单位按约定方案完成水管改造并恢复路面。",
            "漏点已找到并更换水管，楼下天花板重新刷漆，双方握手言和。",
        ),
        failures=("施工后门口路面没有恢复", "楼下天花板还在滴水"),
        channels=("door_to_door", "hotline", "online"),
    ),
    _theme(
        "oil_fume",
        "sanitation",
        "big escalated",
        titles=("沿街饮食店油烟扰民", "餐馆烟道直排，油烟熏进居民家"),
        details=(
            "{who}{via}反映：{road}沿街{n}家饮食店烟道老化，油烟直排，楼上住户常年不敢开窗，晾晒的衣物都是油烟味。",
        ),
        measures=("督促商家重新改造烟道、加装油烟净化设施，并签订定期清洗承诺书",),
        done=("沿街{n}户饮食店完成烟道改造并加装油烟净化器，商家承诺定期清洗，生态环境部门复测达标。",),
        failures=("晚饭时间油烟味仍然很重",),
        departments=("shengtai", "chengguan", "shichang", "zhujian"),
        why="油烟扰民涉及生态环境执法、商户监管和建筑烟道改造，须多部门会商",
        channels=("hotline_12345", "online", "mailbox"),
    ),
    _theme(
        "garbage",
        "sanitation",
        "immediate committed",
        titles=("垃圾清运不及时，异味扰民", "楼道堆放杂物存在消防隐患", "垃圾分类投放点满溢"),
        details=(
            "{who}{via}反映：{compound}垃圾分类投放点已{n}天没有清运，垃圾满溢、蚊蝇滋生，气味很大。",
            "{who}{via}反映：{place}楼道里堆满旧家具和纸箱，堵塞疏散通道，存在消防隐患。",
        ),
        measures=("协调环卫公司加密清运频次，物业每日巡查投放点", "物业通知住户限期清理楼道杂物，逾期统一清运"),
        done=("已协调环卫车辆当天清运，投放点冲洗消杀，明确每日两次清运。", "楼道杂物已清理完毕，张贴消防提示。"),
        failures=("过了两天又堆满了",),
        channels=("online", "hotline_12345", "door_to_door"),
    ),
    _theme(
        "street_light",
        "public_facility",
        "immediate committed",
        titles=("小区路灯不亮，夜间出行不便", "楼道声控灯损坏"),
        details=(
            "{who}{via}反映：{compound}主干道有{n}盏路灯坏了快一个月，晚上黑灯瞎火，老人下楼散步容易摔倒。",
            "{who}{via}反映：{place}楼道声控灯全坏了，晚上上下楼要打手电。",
        ),
        measures=("联系物业电工排查线路，更换损坏灯具",),
        done=("已更换路灯灯具{n}盏，线路检修完毕，夜间照明恢复正常。", "楼道声控灯已全部更换为感应灯。"),
        failures=("换了没几天又有两盏不亮",),
        channels=("online", "door_to_door", "hotline"),
    ),
    _theme(
        "construction_noise",
        "noise",
        "committed big",
        titles=("工地夜间施工噪声扰民", "深夜渣土车轰鸣影响休息"),
        details=(
            "{who}{via}反映：{road}旁的工地连续{n}天施工到凌晨，打桩声震耳，附近居民无法入睡。",
            "{who}{via}反映：每晚十一点后渣土车在{road}来回穿行，鸣笛轰鸣，{compound}居民休息受影响。",
        ),
        measures=("责令施工单位停止夜间高噪声作业，确需连续施工的须办理夜间施工许可并公示",),
        done=("工地已停止夜间施工，加装隔音围挡，渣土车改道并限时通行。",),
        failures=("前两天晚上又在施工",),
        departments=("chengguan", "shengtai", "zhujian"),
        why="夜间施工噪声须城管、生态环境部门执法，施工许可由住建部门管理",
        channels=("hotline_12345", "call_110", "online"),
    ),
    _theme(
        "square_dance",
        "noise",
        "immediate committed",
        titles=("广场舞音响声音过大", "楼下麻将声扰民"),
        details=(
            "{who}{via}反映：{compound}中心广场每晚广场舞音响开得很大，一直跳到晚上十点，家里孩子没法写作业。",
            "{who}{via}反映：楼下店面开棋牌室，每天深夜麻将声不断。",
        ),
        measures=("网格长约谈舞蹈队负责人，约定音量和活动时间", "约谈棋牌室经营者，调整营业时间并做好隔音"),
        done=("已与舞蹈队约定晚上九点前结束、音量调低，改用蓝牙耳机跳舞试点。", "棋牌室已调整营业时间并加装隔音垫。"),
        channels=("hotline", "online", "call_110"),
    ),
    _theme(
        "after_school",
        "proposal",
        "suggestion",
        titles=("建议开办“四点半学校”解决放学托管难", "建议利用党群服务中心开设学生托管"),
        details=("{who}{via}建议：双职工家庭孩子下午四点半放学后无人照看，希望社区联合驻区单位开办四点半学校。",),
        adopted=("建议已采纳：团区委、区教育局认领“社区四点半学校”项目，已开班。",),
        answered=("已答复：已将托管需求汇总报区教育局，附近学校已开设课后服务。",),
        channels=("forum", "deputies_studio", "mailbox"),
    ),
    _theme(
        "express_locker",
        "proposal",
        "suggestion",
        where="urban",
        titles=("建议在小区设置快递取件柜", "建议规范小区快递摆放"),
        details=("{who}{via}建议：{compound}快递都堆在门卫室，经常拿错丢件，希望设置智能快递柜。",),
        adopted=("建议已采纳：物业已引进智能快递柜两组，安装在小区东门。",),
        answered=("已答复：已与快递企业沟通，近期将在小区设置驿站。",),
        channels=("online", "mailbox", "forum"),
    ),
    _theme(
        "renovation_idea",
        "proposal",
        "suggestion",
        where="urban",
        titles=("对老旧小区改造方案的意见建议", "建议增加绿地游园", "建议老旧小区改造加装电梯"),
        details=(
            "{who}{via}建议：{compound}改造时同步加装电梯、增设充电桩，并征求居民意见后再定方案。",
            "{who}{via}建议：{road}附近缺少休闲绿地，希望利用闲置地块建一个口袋公园。",
        ),
        adopted=("建议已采纳并纳入改造方案，已张榜公示征求意见。",),
        answered=("已答复：该建议已转区住建局研究，将在下一批改造计划中统筹考虑。",),
        channels=("deputies_station", "deputies_studio", "forum", "mailbox", "neighbour_talk"),
    ),
    _theme(
        "road_damage",
        "public_facility",
        "committed big escalated",
        titles=("道路破损坑洼，雨天积水", "人行道砖块松动绊倒行人"),
        details=(
            "{who}{via}反映：{road}靠近{compound}路段路面坑洼，雨天积水很深，电动车经过容易摔倒。",
            "{who}{via}反映：{road}人行道砖块松动翘起，前几天有老人被绊倒。",
        ),
        measures=("交通运输部门组织修补路面，城管同步修复人行道",),
        done=("破损路面已铣刨重铺，人行道砖更换完毕，排水口疏通。",),
        failures=("下雨后路面还是积水",),
        departments=("jiaotong", "chengguan"),
        why="市政道路维修属区交通运输局和城管职责",
        channels=("hotline_12345", "online"),
    ),
    _theme(
        "water_pressure",
        "water",
        "committed big escalated",
        where="urban",
        titles=("高层住户水压低，经常没水", "小区二次供水设施老化"),
        details=(
            "{who}{via}反映：{place}{floor}楼以上住户白天水压很低，洗澡经常没热水，已持续{n}个月。",
            "{who}{via}反映：{compound}二次供水水箱多年未清洗，自来水发黄。",
        ),
        measures=("水利部门协调供水公司检修加压泵房，清洗消毒二次供水水箱",),
        done=("加压设备已更换，水箱清洗消毒并出具水质检测报告，高层水压恢复正常。",),
        failures=("早上用水高峰水压还是不够",),
        departments=("shuiwu", "zhujian"),
        why="二次供水设施改造涉及供水企业和住建部门，社区无权处置",
        channels=("hotline_12345", "hotline", "online"),
    ),
    _theme(
        "drain_block",
        "water",
        "committed big escalated",
        titles=("排水沟堵塞，雨天积水进屋", "雨水篦子堵塞，路面积水"),
        details=(
            "{who}{via}反映：{place}附近排水沟被垃圾淤泥堵塞，一下大雨就积水进屋，已经淹了{n}次。",
            "{who}{via}反映：{road}雨水篦子被树叶淤泥堵死，暴雨后路面积水没过脚踝。",
        ),
        measures=("组织清淤疏通排水沟，破损段重新砌筑并加盖板",),
        done=("排水沟已全线清淤疏通，破损段重新砌筑加盖，雨后未再积水。",),
        failures=("上游一段还没有清理",),
        departments=("shuiwu", "chengguan", "shengtai"),
        why="排水设施清淤改造需水利、城管部门安排资金和施工",
        channels=("villagers_talk", "door_to_door", "hotline_12345"),
    ),
    _theme(
        "village_ditch",
        "water",
        "committed big",
        where="rural",
        titles=("村道边沟淤塞，污水漫溢", "村里灌溉水渠破损漏水"),
        details=(
            "{who}{via}反映：{compound}村道边沟多年没有清淤，污水漫到路面，气味难闻。",
            "{who}{via}反映：{compound}的灌溉水渠有{n}处破损，放水时大半漏掉，下游农田浇不上水。",
        ),
        measures=("村委会组织清淤，破损渠段列入水利维修计划",),
        done=("边沟已清淤并加盖板，破损渠段重新浇筑，放水试验正常。",),
        failures=("下游一段还没有修好",),
        departments=("shuiwu", "ziranziyuan"),
        why="沟渠改造需水利部门立项，占用土地须自然资源部门审核",
        channels=("villagers_talk", "door_to_door"),
    ),
    _theme(
        "fee_dispute",
        "property",
        "big hard",
        where="urban",
        titles=("物业费上涨引发业主与物业矛盾", "业主与物业公司纠纷，要求更换物业"),
        details=(
            "{who}{via}反映：{compound}物业公司未经业主大会同意上调物业费，服务却越来越差，几十户业主拒交物业费，"
            "双方矛盾激化。",
        ),
        measures=("社区智囊团介入调解，依法组织业主大会表决，实现老物业退出、新物业入驻",),
        done=("经业主大会表决，老物业已退出，新物业入驻，选出6名党员楼管组成红色业委会。",),
        failures=("新物业交接还没完成，停车场仍由老物业收费",),
        departments=("zhujian", "shichang", "gongan"),
        why="物业费和物业更换涉及价格监管和住建部门，矛盾已激化，需联动会商",
        material="物业服务合同和收费公示材料",
        channels=("deputies_studio", "neighbour_talk", "mailbox"),
    ),
    _theme(
        "ebike_charging",
        "property",
        "immediate committed",
        titles=("电动车楼道充电存在火灾隐患", "电动车飞线充电"),
        details=("{who}{via}反映：{place}有住户把电动车推进楼道充电，电线从窗户拉下来，存在火灾隐患。",),
        measures=("网格员上门劝导，协调物业增设集中充电桩",),
        done=("已劝导住户移出电动车并拆除飞线，小区新增集中充电桩{n}个。",),
        failures=("晚上还有人在楼道充电",),
        channels=("door_to_door", "online", "hotline"),
    ),
    _theme(
        "old_toilet",
        "housing",
        "committed supplement big",
        where="urban",
        titles=("老旧卫生间渗漏亟需修缮", "公房屋面老化漏雨"),
        details=(
            "{who}{via}反映：{place}是八十年代的老房子，卫生间防水早就失效，{room}墙面长期渗水发霉。",
            "{who}{via}反映：{place}公房屋面瓦片破损，雨天屋里要摆好几个盆接水。",
        ),
        measures=("房管部门安排维修队重做防水，更换破损瓦片",),
        done=("卫生间防水层已重做，渗漏墙面修复完毕。", "屋面破损瓦片已全部更换，雨天不再漏雨。"),
        failures=("墙角还是返潮",),
        departments=("zhujian",),
        why="公房修缮须住建部门立项安排资金",
        material="房屋租赁凭证和漏水部位照片",
        channels=("hotline_12345", "door_to_door", "deputies_station"),
    ),
    _theme(
        "river_litter",
        "sanitation",
        "committed escalated",
        titles=("河道漂浮垃圾无人清理", "溪沟有人倾倒建筑垃圾"),
        details=(
            "{who}{via}反映：{place}旁的河道漂满塑料袋和泡沫，天热后发臭，附近居民意见很大。",
            "{who}{via}反映：夜里有车往{compound}边上的溪沟倾倒建筑垃圾，已经堆了{n}车。",
        ),
        measures=("组织打捞河道漂浮物，设置监控，查处偷倒行为",),
        done=("河道漂浮垃圾已打捞清理，建筑垃圾清运完毕，加装监控探头。",),
        failures=("又有人晚上来倒垃圾",),
        departments=("shengtai", "shuiwu", "chengguan"),
        why="河道保洁和偷倒查处涉及生态环境、水利和城管执法",
        channels=("villagers_talk", "hotline_12345", "online"),
    ),
    _theme(
        "elder_canteen",
        "elderly",
        "suggestion",
        titles=("建议开设长者食堂", "建议组织上门义诊"),
        details=(
            "{who}{via}建议：社区老人多，很多人一个人做饭不方便，希望在党群服务中心开设长者食堂，提供平价午餐。",
            "{who}{via}建议：请区妇幼保健院、社区卫生服务中心定期到{compound}开展上门义诊。",
        ),
        adopted=(
            "建议已采纳：长者食堂已开业，八十岁以上老人用餐享受补贴。",
            "建议已采纳：每月一次“健康到社区”义诊活动。",
        ),
        answered=(
            "已答复：附近长者食堂可提供送餐上门服务，社区已登记需要送餐的老人。",
            "已答复：社区卫生服务中心已开通家庭医生签约上门服务。",
        ),
        channels=("deputies_station", "neighbour_talk", "forum"),
    ),
    _theme(
        "flyers",
        "sanitation",
        "immediate",
        titles=("小广告乱贴乱画", "楼道墙面被喷涂开锁小广告"),
        details=("{who}{via}反映：{place}单元门和楼道墙面贴满开锁、通下水道的小广告，很影响环境。",),
        done=("网格员当天组织志愿者清理小广告，墙面重新粉刷。",),
        channels=("online", "door_to_door"),
    ),
    _theme(
        "street_vendors",
        "sanitation",
        "committed big",
        titles=("小区门口流动摊贩占道经营", "早市摊点占道，垃圾遍地"),
        details=("{who}{via}反映：{compound}门口每天早上有十多个流动摊贩占道经营，堵住出入口，收摊后垃圾遍地。",),
        measures=("城管划定临时疏导点，市场监管部门检查食品安全，摊贩入点经营",),
        done=("已设置便民疏导点，摊贩统一入点经营，收市后保洁及时跟进。",),
        failures=("疏导点设好后，早上仍有摊贩在门口摆摊",),
        departments=("chengguan", "shichang"),
        why="占道经营须城管执法，食品安全归市场监管",
        channels=("hotline_12345", "online"),
    ),
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SURNAMES = (
    "林陈黄郑王李张刘吴杨赵周徐孙朱胡郭何罗梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余叶程魏苏吕丁沈卢姜钟"
    "谭陆汪范金石廖方邹孟熊邱江薛雷侯史黎游翁池詹"
)
MALE = _words(
    "建国 德明 春生 国华 志强 明辉 学明 永福 金水 伟 杰 涛 海峰 文彬 晓东 建华 振华 宏伟 子豪 浩然 "
    "俊杰 家明 依水 长青 守诚 立新 荣华 宗平 炳坤 少锋"
)
FEMALE = _words(
    "秀英 桂英 玉兰 秀珍 淑珍 美华 丽华 春燕 海燕 艳 静 敏 娟 芳 丽娟 雪梅 晓燕 玉梅 婷婷 欣怡 "
    "雨涵 佳琪 凤英 金凤 碧霞 惠珍 月琴 翠琴 素英 宝珠"
)
PHONE_PREFIXES = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 "
    "173 175 176 177 178 180 181 182 183 185 186 187 188 189 191 198 199"
)
ROADS = _words(
    "罗星路 马江路 君竹路 江滨东大道 沿山西路 儒江西路 青洲路 登龙路 港口路 亭江路 闽安路 琅岐环岛路 "
    "海屿路 魁岐路 上岐路 朏头路"
)
COMPOUNDS = {
    "马限社区": ("帝豪花园", "马限新村", "昭忠路小区", "马限山庄", "船政小区"),
    "君竹社区": ("君竹明居", "君竹新村", "江滨花园"),
    "罗星社区": ("罗星花园", "罗星塔小区", "海关巷小区"),
    "青洲社区": ("青洲新村", "青洲花园", "翡丽湾小区"),
    "上岐社区": ("上岐新村", "江南水都", "上岐安置房"),
    "亭江社区": ("亭江新村", "亭江花园", "闽安路小区"),
    "琅岐社区": ("琅岐新村", "海韵花园", "琅岐安置小区"),
}
VILLAGE_PLACES = ("安置小区", "新村片区", "老街片区", "{k}组", "{k}组", "{k}组")

CHANNEL_WEIGHTS = {
    "hotline_12345": 22,
    "online": 14,
    "door_to_door": 14,
    "hotline": 10,
    "neighbour_talk": 6,
    "forum": 5,
    "deputies_station": 5,
    "deputies_studio": 4,
    "mailbox": 4,
    "call_110": 3,
    "villagers_talk": 4,
}
VIA = {  # how the petition reached the office, as a description says it
    "hotline_12345": "拨打12345热线",
    "hotline": "来电",
    "online": "通过网络平台",
    "mailbox": "来信",
    "door_to_door": "在网格员上门走访时",
    "forum": "在社区座谈会上",
    "neighbour_talk": "在近邻恳谈会上",
    "deputies_station": "在人大代表联络站座谈时",
    "deputies_studio": "在两代表一委员工作室",
    "call_110": "拨打110",
    "villagers_talk": "在村民说事会上",
}
EVENING_CHANNELS = frozenset({"neighbour_talk", "villagers_talk", "deputies_station", "forum"})
ANY_HOUR_CHANNELS = frozenset({"hotline_12345", "hotline", "online", "call_110"})
DAYTIME_CHANNELS = ("door_to_door", "hotline_12345", "hotline", "online")

RETURN_REASONS = (
    "诉求地址描述不清，无法确定具体楼栋，请核实后重新派单",
    "反映人电话无法接通，诉求内容需进一步核实",
    "该事项需先核实是否属本网格责任范围，请重新研判后派单",
    "工单分类有误，请核实诉求内容后重新派单",
)
EXTENSION_REASONS = (
    "整改需业主大会表决通过，时间较长，申请延期",
    "施工需连续晴好天气，近期持续降雨，申请延期",
    "涉及材料采购和专业队伍进场，申请延期",
    "需等待相关部门出具鉴定意见，申请延期",
    "整改方案需征求全体住户意见，申请延期",
)
SMALL_PROGRESS = (
    "网格长已到现场核实情况，正在与相关方协商",
    "已联系物业和当事人，约定近日上门处理",
    "已向反映人说明办理进度，正在落实整改措施",
    "已召集楼栋党小组长和居民代表了解情况",
)
BIG_PROGRESS = (
    "牵头部门已到现场勘查，整改方案正在细化",
    "施工队伍已进场，整改按计划推进",
    "已完成前期摸排，形成问题、责任、整改三清单",
    "已向反映人通报会商结果和整改进度",
)
SUGGESTION_PROGRESS = (
    "建议已提交社区两委会研究",
    "已就建议征求居民代表意见",
    "已将建议转交区直有关部门研究",
)
FEEDBACK = {
    FeedbackMethod.HOME_VISIT: "上门向{who}当面答复",
    FeedbackMethod.ON_SITE: "在现场向{who}说明处理结果",
    FeedbackMethod.ONLINE: "通过网络平台向{who}回复办理结果",
    FeedbackMethod.HOTLINE_CALLBACK: "热线回访{who}，告知办理结果",
    FeedbackMethod.WRITTEN_REPLY: "以书面函复形式答复{who}",
    FeedbackMethod.MEETING: "召集居民代表会议，通报办理情况",
}
COMMENTS = {
    Satisfaction.SATISFIED: ("办得快，很满意", "网格长很负责，点赞", "问题解决了，谢谢社区", "处理及时，态度好", ""),
    Satisfaction.BASICALLY_SATISFIED: ("问题基本解决，就是等的时间有点长", "效果还可以，希望后续持续关注"),
    Satisfaction.DISSATISFIED: ("处理太慢，问题还没有根本解决", "希望能彻底解决，不要反复"),
}


# --- a case's script ---------------------------------------------------------


@dataclass
class Scenario:
    path: str
    returned: bool = False
    failures: int = 0  # failed resident verifications before one passes
    extend: bool = False
    late: bool = False  # rectified after the limit, after a supervision notice
    stuck: str | None = None  # the stage at which the case stops, left open
    outcome: SuggestionOutcome | None = None
    leader: bool = False  # a suggestion a leader takes on (tier hard)
    two_leaders: bool = False  # in a grid with two leaders, so a return goes to the other
    theme: str | None = None  # a story from the reports, told on purpose


# Oldest cases first: each path and twist at least once whatever the count.
COVERAGE = (
    Scenario("immediate"),
    Scenario("committed", returned=True, two_leaders=True),
    Scenario("big", failures=1),
    Scenario("suggestion", outcome=SuggestionOutcome.ADOPTED, leader=True, theme="love_station"),
    Scenario("big", theme="roof_leak"),
    Scenario("committed", extend=True),
    Scenario("hard", extend=True),
    Scenario("escalated", returned=True),
    Scenario("committed", late=True),
    Scenario("suggestion", outcome=SuggestionOutcome.ANSWERED),
    Scenario("supplement", failures=1),
    Scenario("hard", theme="no_property"),
    Scenario("big", late=True),
    Scenario("committed", stuck="rectifying"),
    Scenario("big", stuck="whistled"),
    Scenario("immediate"),
    Scenario("committed", failures=2),
)


@dataclass
class Step:
    at: datetime
    case: int
    seq: int
    kind: str
    run: Callable[[Cases], None]

    def clock(self) -> datetime:
        """The application's clock while this step runs."""
        return self.at


@dataclass
class Script:
    index: int
    scenario: Scenario
    steps: list[Step] = field(default_factory=list)
    case_id: UUID | None = None
    number: str = ""
    done: list[str] = field(default_factory=list)

    @property
    def t(self) -> datetime:
        return self.steps[-1].at

    def add(self, kind: str, at: datetime, run: Callable[[Cases], None]) -> datetime:
        if self.steps and at <= self.t:
            at = self.t + timedelta(minutes=2)
        self.steps.append(Step(at, self.index, len(self.steps), kind, run))
        return at

    def command(self, kind: str, at: datetime, command: str, actor: Actor, /, **fields: Any) -> datetime:
        """Plans `Cases.<command>(case_id, actor, **fields)`; "{number}" in a text
        becomes the case number, known only once the case is registered."""

        def run(cases: Cases) -> None:
            values = {k: v.replace("{number}", self.number) if type(v) is str else v for k, v in fields.items()}
            getattr(cases, command)(self.case_id, actor, **values)

        return self.add(kind, at, run)


class _Planner:
    """Plans every case's script; nothing here touches the store."""

    def __init__(self, cases: Cases, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.policy = cases.policy
        ref = cases.reference
        self.ref = ref
        self.grids = sorted(ref.grids)
        self.micro_by_grid: dict[str, list[str]] = {}
        for micro, grid in sorted(ref.micro_grids.items()):
            self.micro_by_grid.setdefault(grid, []).append(micro)
        self.leaders_by_grid: dict[str, list[str]] = {}
        for person in sorted(ref.grid_leaders.values(), key=lambda p: p.id):
            for grid in person.grids:
                self.leaders_by_grid.setdefault(grid, []).append(person.id)
        self.officers: dict[str, list[Actor]] = {}
        for person in sorted(ref.township_officers.values(), key=lambda p: p.id):
            self.officers.setdefault(person.unit or "", []).append(Actor(person.id, Role.TOWNSHIP, person.unit))
        self.leaders = sorted(ref.leaders)
        self.themes = [
            t for t in THEMES if t.category in ref.categories and all(d in ref.departments for d in t.departments)
        ]
        self.channels = {c: w for c, w in CHANNEL_WEIGHTS.items() if c in ref.channels} or {c: 1 for c in ref.channels}
        self._working: dict[date, bool] = {}
        self._staff: dict[tuple[str, str], str] = {}

    # --- time ---------------------------------------------------------------

    def working(self, day: date) -> bool:
        if day not in self._working:
            self._working[day] = is_working_day(day)[0]
        return self._working[day]

    def next_working(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.working(day):
            day += timedelta(days=1)
        return day

    def moment(self, day: date, hour: float) -> datetime:
        minutes = min(int(hour * 60), 23 * 60 + 58)
        local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, self.rng.randint(0, 59))
        return local.replace(tzinfo=CHINA).astimezone(UTC)

    def office(self, t: datetime) -> datetime:
        """The same moment if it falls in office hours, else the next opening."""
        local = t.astimezone(CHINA)
        day, hour = local.date(), local.hour + local.minute / 60
        if self.working(day):
            if 8.5 <= hour < 17.75:
                return t
            if hour < 8.5:
                return self.moment(day, self.rng.uniform(8.5, 9.5))
        return self.moment(self.next_working(day), self.rng.uniform(8.5, 10.0))

    def resident(self, t: datetime) -> datetime:
        """Residents answer from eight in the morning to nine at night."""
        local = t.astimezone(CHINA)
        hour = local.hour + local.minute / 60
        if 8 <= hour < 21:
            return t
        day = local.date() if hour < 8 else local.date() + timedelta(days=1)
        return self.moment(day, self.rng.uniform(8.5, 11.0))

    def later(self, t: datetime, lo: float, hi: float, *, office: bool = True) -> datetime:
        """`lo`..`hi` hours after `t`, moved into office hours unless told not to."""
        t = t + timedelta(hours=self.rng.uniform(lo, hi))
        return self.office(t) if office else t

    def before(self, t: datetime, last: date) -> datetime | None:
        """An office moment after `t` whose local date is at most `last`, or None."""
        start = local_date(t)
        days = [start + timedelta(days=i) for i in range((last - start).days + 1)]
        days = [d for d in days if self.working(d)]
        self.rng.shuffle(days)
        for day in days:
            local = t.astimezone(CHINA)
            floor = local.hour + local.minute / 60 + 0.5 if day == start else 8.5
            if floor < 17.5:
                return self.moment(day, self.rng.uniform(max(floor, 8.5), 17.5))
        return None

    def by(self, t: datetime, last: date) -> datetime:
        """An office moment after `t`, on or before `last` when that is possible."""
        return self.before(t, last) or self.later(t, 1, 4)

    def resolve_due(self, handling_type: HandlingType, tier: Tier, registered: datetime, at: datetime) -> date:
        version = self.policy.in_force(local_date(at))
        deadlines = version.deadlines(handling_type, tier, local_date(registered))
        return date.fromisoformat(deadlines["resolve"]["due"])

    # --- people and places -------------------------------------------------

    def person(self) -> tuple[str, str, bool]:
        male = self.rng.random() < 0.48
        surname = self.rng.choice(SURNAMES)
        return surname + self.rng.choice(MALE if male else FEMALE), surname, male

    def phone(self) -> str:
        return self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def staff(self, department: str, street: str) -> str:
        if (department, street) not in self._staff:
            self._staff[(department, street)] = self.person()[0]
        return self._staff[(department, street)]

    def department(self, code: str, street: str) -> Actor:
        return Actor(f"D-{code}-{street[-3:]}", Role.DEPARTMENT, code)

    def township(self, street: str) -> Actor:
        officers = self.officers.get(street) or [Actor(f"T-{street}", Role.TOWNSHIP, street)]
        return self.rng.choice(officers)

    def place(self, units: dict[str, str]) -> dict[str, Any]:
        rng = self.rng
        community = units["community_name"]
        village = community.endswith("村")
        if village:
            compound = community + rng.choice(VILLAGE_PLACES).format(k=rng.randint(1, 9))
            building = f"{compound}{rng.randint(1, 60)}号"
            location = f"{units['street_name']}{building}"
        else:
            compound = rng.choice(COMPOUNDS.get(community) or (f"{community}新村", f"{community}花园"))
            building = f"{compound}{rng.randint(1, 24)}号楼"
            location = f"{units['street_name']}{community}{building}{rng.randint(1, 4)}单元"
        floor = rng.randint(2, 6 if village else 18)
        room = f"{floor}0{rng.randint(1, 4)}室"
        return {
            "compound": compound,
            "place": building,
            "room": room,
            "floor": floor,
            "road": rng.choice(ROADS),
            "n": rng.randint(2, 9),
            "location": location,
            "village": village,
        }

    # --- planning ------------------------------------------------------------

    def scenario(self, registered_days_ago: float) -> Scenario:
        rng = self.rng
        path = rng.choices(list(PATH_WEIGHTS), weights=list(PATH_WEIGHTS.values()))[0]
        s = Scenario(path)
        if path == "suggestion":
            s.outcome = SuggestionOutcome.ADOPTED if rng.random() < 0.6 else SuggestionOutcome.ANSWERED
            s.leader = rng.random() < 0.12
        if path != "immediate":
            s.returned = rng.random() < 0.07
            s.two_leaders = s.returned and rng.random() < 0.3
        if path not in ("immediate", "suggestion"):
            roll = rng.random()
            s.failures = 2 if roll < 0.015 else 1 if roll < 0.11 else 0
            s.extend = rng.random() < 0.1
            s.late = not s.extend and rng.random() < 0.07
        stuck_chance = 0.16 if registered_days_ago < 40 else 0.04
        if path != "immediate" and rng.random() < stuck_chance:
            stages = ["assigned", "accepted"]
            if path in ("big", "escalated", "hard"):
                stages += ["whistled", "rectifying", "rectifying"]
            elif path != "suggestion":
                stages += ["rectifying", "rectifying"]
                if s.failures:
                    stages.append("reworking")
            if registered_days_ago < 3:
                stages += ["registered", "classified"]
            s.stuck = rng.choice(stages)
        return s

    def registration_time(self, days_ago: float, channel: str, path: str) -> datetime:
        rng = self.rng
        day = local_date(self.now) - timedelta(days=int(days_ago))
        if channel not in ANY_HOUR_CHANNELS or path == "immediate":
            while not self.working(day):
                day -= timedelta(days=1)
        if path == "immediate":
            hour = rng.uniform(8.5, 15.0)
        elif channel in EVENING_CHANNELS:
            hour = rng.uniform(19.0, 21.0)
        elif channel in ANY_HOUR_CHANNELS:
            hour = rng.triangular(7.5, 22.5, 10.0)
        else:
            hour = rng.uniform(8.5, 17.5)
        at = self.moment(day, hour)
        while at > self.now:
            at -= timedelta(days=1)
        return at

    def plan(self, index: int, days_ago: float, scenario: Scenario) -> Script:
        rng = self.rng
        shared = [g for g in self.grids if len(self.leaders_by_grid.get(g, [])) > 1]
        grid = rng.choice(shared if scenario.two_leaders and shared else self.grids)
        units = self.ref.grids[grid]
        place = self.place(units)
        avoid = "urban" if place["village"] else "rural"
        fitting = [t for t in self.themes if scenario.path in t.paths and t.where != avoid]
        theme = rng.choice(fitting or [t for t in self.themes if scenario.path in t.paths] or self.themes)
        pinned = [t for t in self.themes if t.key == scenario.theme and scenario.path in t.paths]
        if pinned:
            theme = pinned[0]
            if theme.where == "urban" and place["village"]:
                grid = rng.choice([g for g in self.grids if not self.ref.grids[g]["community_name"].endswith("村")])
                units = self.ref.grids[grid]
                place = self.place(units)
        if scenario.path in ("big", "escalated") and not theme.departments:
            scenario.path = "committed"
        name, surname, male = self.person()
        phone = self.phone()
        mr = f"{surname}{'先生' if male else '女士'}"
        who = f"村民{mr}" if place["village"] else rng.choice((f"居民{mr}", f"{place['compound']}业主{mr}"))
        if rng.random() < 0.08:
            who = f"退休老党员{name}"
        channel = self.channel(theme, scenario.path, place["village"], pinned=bool(pinned))
        words = {**place, "who": who, "name": name, "via": VIA.get(channel, "")}
        variant = rng.randrange(len(theme.details))  # title i tells detail i mod n
        titles = [t for i, t in enumerate(theme.titles) if i % len(theme.details) == variant] or list(theme.titles)
        script = Script(index, scenario)
        case = _Case(self, script, theme, units, words, Actor(f"R{phone}", Role.RESIDENT))

        registered = self.registration_time(days_ago, channel, scenario.path)
        leaders = self.leaders_by_grid[grid]
        registrar = CLERK
        if channel in ("hotline_12345", "hotline", "call_110"):
            registrar = OPERATOR
        elif channel == "door_to_door" and rng.random() < 0.6:
            registrar = Actor(rng.choice(leaders), Role.GRID_LEADER)
        micro = self.micro_by_grid.get(grid, [])
        fields = {
            "channel": channel,
            "category": theme.category,
            "title": rng.choice(titles),
            "description": theme.details[variant].format(**words),
            "location": place["location"],
            "grid": rng.choice(micro) if micro and rng.random() < 0.5 else grid,
            "petitioner_name": name,
            "petitioner_phone": phone,
        }

        def register(cases: Cases) -> None:
            result = cases.register(registrar, **fields)
            script.case_id, script.number = UUID(result.case_id), result.number

        script.add("register", registered, register)
        case.title = fields["title"]
        case.variant = variant
        case.run(leaders)
        return script

    def channel(self, theme: Theme, path: str, village: bool, *, pinned: bool = False) -> str:
        rng = self.rng
        if path == "immediate":
            options = [c for c in DAYTIME_CHANNELS if c in self.channels] or list(self.channels)
            return rng.choice(options)
        preferred = [c for c in theme.channels if c in self.channels and (village or c != "villagers_talk")]
        if preferred and (pinned or rng.random() < 0.6):
            return rng.choice(preferred)
        weighted = {c: w for c, w in self.channels.items() if village or c != "villagers_talk"}
        return rng.choices(list(weighted), weights=list(weighted.values()))[0]


class _Case:
    """Writes one case's script along its scenario."""

    def __init__(
        self,
        planner: _Planner,
        script: Script,
        theme: Theme,
        units: dict[str, str],
        words: dict[str, Any],
        resident: Actor,
    ) -> None:
        self.p = planner
        self.rng = planner.rng
        self.s = script
        self.sc = script.scenario
        self.theme = theme
        self.units = units
        self.words = words
        self.resident = resident
        self.title = ""
        self.due = date.min
        self.lead: str | None = None
        self.lead_actor: Actor | None = None
        self.leader: Actor | None = None
        self.whistled: list[str] = []
        self.street = units["street"]
        self.township = planner.township(self.street)
        self.grid_leader = Actor("", Role.GRID_LEADER)  # set on assignment
        self.supervised_due = date.min
        self.plan_deadline = date.min
        self.variant = 0  # which of the theme's details this case tells

    def text(self, options: Sequence[str], fallback: str = "") -> str:
        """One of the theme's words: the case's own variant when the list has one per detail."""
        if not options:
            return fallback
        paired = len(options) == len(self.theme.details) > 1
        return (options[self.variant] if paired else self.rng.choice(options)).format(**self.words)

    def dept_name(self, code: str) -> str:
        return self.p.ref.departments[code]

    # --- the whole life ------------------------------------------------------

    def run(self, leaders: list[str]) -> None:
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        if sc.stuck == "registered":
            return
        handling_type, tier = PATHS[sc.path]
        if sc.path == "hard" and rng.random() < 0.3:
            handling_type = HandlingType.ESCALATED
        if sc.path == "suggestion" and sc.leader:
            tier = Tier.HARD
        intake = self.township if tier != Tier.SMALL and rng.random() < 0.35 else CLERK
        immediate = sc.path == "immediate"
        t = p.later(s.t, 0.08, 0.6, office=not immediate)
        registered = s.steps[0].at
        t = s.command("classify", t, "classify", intake, handling_type=handling_type, tier=tier)
        self.due = p.resolve_due(handling_type, tier, registered, t)
        if sc.stuck == "classified":
            return
        leader_id = rng.choice(leaders)
        t = s.command("assign", p.later(t, 0.03, 0.3, office=not immediate), "assign", intake, assignee=leader_id)
        if sc.returned:
            t = s.command(
                "return",
                p.later(t, 0.3, 5),
                "return_case",
                Actor(leader_id, Role.GRID_LEADER),
                reason=rng.choice(RETURN_REASONS),
            )
            others = [g for g in leaders if g != leader_id]
            leader_id = rng.choice(others) if others else leader_id
            t = s.command("assign", p.later(t, 0.3, 3), "assign", intake, assignee=leader_id)
        self.grid_leader = Actor(leader_id, Role.GRID_LEADER)
        if sc.stuck == "assigned":
            self.supervise(self.units["street_name"])
            return
        accept_after = (0.05, 0.5) if immediate else (0.15, 6)
        s.command("accept", p.later(t, *accept_after, office=not immediate), "accept", self.grid_leader)
        if sc.path == "immediate":
            self.immediate()
        elif sc.path == "suggestion":
            self.suggestion()
        elif sc.path in ("big", "escalated", "hard"):
            self.joint()
        else:
            self.small()

    def immediate(self) -> None:
        p, s = self.p, self.s
        gl = self.grid_leader
        s.command("rectify", p.later(s.t, 0.4, 3, office=False), "rectify", gl, summary=self.text(self.theme.done))
        verifier = self.verifier()
        s.command(
            "verify",
            p.later(s.t, 0.2, 1.5, office=False),
            "verify",
            verifier,
            passed=True,
            reason="居民现场查看，已解决" if verifier is self.resident else "电话回访居民，确认已解决",
        )
        self.finish(gl, methods=(FeedbackMethod.ON_SITE, FeedbackMethod.HOTLINE_CALLBACK, FeedbackMethod.HOME_VISIT))

    def small(self) -> None:
        """承诺件 and 补办件: the grid leader works it, the township may extend."""
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        gl = self.grid_leader
        if sc.path == "supplement":
            s.command(
                "report_progress",
                p.later(s.t, 0.5, 8),
                "report_progress",
                gl,
                progress=f"材料不全，已请反映人补充{self.theme.material}",
            )
            s.command(
                "feedback",
                p.later(s.t, 0.1, 2),
                "give_feedback",
                gl,
                method=FeedbackMethod.ONLINE,
                content=f"已通过网络平台告知{self.words['who']}需补充{self.theme.material}",
            )
            s.command(
                "report_progress", p.later(s.t, 20, 60), "report_progress", gl, progress="反映人已补齐材料，转入办理"
            )
        else:
            s.command(
                "report_progress", p.later(s.t, 1, 20), "report_progress", gl, progress=rng.choice(SMALL_PROGRESS)
            )
        if sc.stuck == "accepted":
            self.supervise(self.units["grid_name"])
            return
        plan_at = p.later(s.t, 0.5, 20)
        deadline = max(local_date(plan_at), min(local_date(plan_at) + timedelta(days=rng.randint(1, 5)), self.due))
        self.plan_deadline = deadline
        nearby = (
            f"{self.units['community_name']}村民委员会"
            if self.words["village"]
            else f"{self.words['compound']}物业服务中心"
        )
        unit = rng.choice((self.units["community_name"], nearby, self.units["grid_name"]))
        s.command(
            "plan",
            plan_at,
            "plan_rectification",
            gl,
            measures=self.text(self.theme.measures, "网格长牵头协调相关方限期整改"),
            responsible_unit=unit,
            responsible_person=self.p.ref.grid_leaders[gl.id].name,
            deadline=deadline,
        )
        self.rectify_and_close(gl, self.township, closer=gl, extend_days=(5, 15))

    def joint(self) -> None:
        """大事 and 上报件 by whistle and consultation; 难事 with a leader."""
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        hard = sc.path == "hard"
        if hard:
            self.take_lead(p.later(s.t, 2, 48))
        s.command(
            "report_progress",
            p.later(s.t, 0.5, 30),
            "report_progress",
            self.grid_leader,
            progress="已到现场核实，问题超出网格处置能力，已报镇（街道）"
            if sc.path != "escalated"
            else "已上报区直有关部门",
        )
        if sc.stuck == "accepted":
            self.supervise(self.units["street_name"])
            return
        if self.theme.departments and (not hard or rng.random() < 0.8):
            if not self.whistle():
                self.supervise(self.dept_name(self.whistled[-1]))
                return
            planner = self.leader if hard and self.leader and rng.random() < 0.5 else self.lead_actor
            doer = self.lead_actor
            unit = self.dept_name(self.lead or "")
        else:
            planner = self.leader or self.township
            doer = self.grid_leader
            unit = self.units["street_name"]
        assert planner is not None and doer is not None
        plan_at = p.later(s.t, 1, 40)
        span = rng.randint(7, 20)
        deadline = max(local_date(plan_at), min(local_date(plan_at) + timedelta(days=span), self.due))
        self.plan_deadline = deadline
        person = (
            self.p.staff(self.lead, self.street) if self.lead else self.p.ref.grid_leaders[self.grid_leader.id].name
        )
        if planner.role == Role.LEADER:
            person = self.p.ref.leaders[planner.id].name
        s.command(
            "plan",
            plan_at,
            "plan_rectification",
            planner,
            measures=self.text(self.theme.measures, "牵头部门制定整改方案，限期整改到位"),
            responsible_unit=unit,
            responsible_person=person,
            deadline=deadline,
        )
        s.command("report_progress", p.later(s.t, 20, 90), "report_progress", doer, progress=rng.choice(BIG_PROGRESS))
        extender = self.leader if hard and self.leader else self.township
        closer = self.leader if hard and self.leader else self.township
        self.rectify_and_close(doer, extender, closer=closer, extend_days=(10, 30), big=True)

    def suggestion(self) -> None:
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        gl = self.grid_leader
        if sc.leader:
            self.take_lead(p.later(s.t, 1, 30), first_secretary=self.theme.key == "love_station")
        s.command(
            "report_progress", p.later(s.t, 2, 60), "report_progress", gl, progress=rng.choice(SUGGESTION_PROGRESS)
        )
        if sc.stuck:
            return
        outcome = sc.outcome or SuggestionOutcome.ANSWERED
        adopted = outcome == SuggestionOutcome.ADOPTED
        summary = self.text(self.theme.adopted if adopted else self.theme.answered, "建议已研究并答复反映人。")
        closer = self.leader if sc.leader and self.leader else rng.choice((gl, self.township, CLERK))
        wait = (120, 460) if sc.leader or adopted else (24, 160)
        s.command("close", p.later(s.t, *wait), "close_case", closer, summary=summary, suggestion_outcome=outcome)
        methods = (
            FeedbackMethod.WRITTEN_REPLY,
            FeedbackMethod.MEETING,
            FeedbackMethod.ONLINE,
            FeedbackMethod.HOME_VISIT,
        )
        self.after_close(closer if closer.role != Role.LEADER else CLERK, methods, summary)

    # --- pieces --------------------------------------------------------------

    def take_lead(self, at: datetime, *, first_secretary: bool = False) -> None:
        """包案: the first leader (the secretary) takes the love-station idea, as in Lüliang."""
        leaders = self.p.leaders
        if not leaders:
            return
        if first_secretary:
            chosen = leaders[0]
        else:
            chosen = self.rng.choices(leaders, weights=[1 if i < 2 else 4 for i in range(len(leaders))])[0]
        self.leader = Actor(chosen, Role.LEADER)
        self.s.command("take_lead", at, "take_lead", self.leader)

    def whistle(self) -> bool:
        """Blow the whistle; departments report in; the township consults.
        False when the case stops with a department that never reported."""
        rng, p, s = self.rng, self.p, self.s
        codes = list(self.theme.departments)
        lead, others = codes[0], codes[1:]
        if others and not self.sc.theme:  # a story told on purpose summons them all
            k = rng.randint(1, len(others)) if rng.random() < 0.6 else len(others)
            others = rng.sample(others, k)
        self.whistled = [lead, *others]
        names = "、".join(self.dept_name(c) for c in self.whistled)
        t = s.command(
            "whistle",
            p.later(s.t, 1, 30),
            "whistle",
            self.township,
            departments=self.whistled,
            reason=f"{self.theme.why or self.title}，召集{names}报到。",
        )
        arrivals = []
        for code in self.whistled:
            fast = rng.random() < 0.65
            arrivals.append((p.later(t, 0.25, 4) if fast else p.later(t, 24, 80), code))
        arrivals.sort()
        if self.sc.stuck == "whistled":
            arrivals = arrivals[:-1]
            for at, code in arrivals:
                s.command("report_in", at, "report_in", self.p.department(code, self.street))
            missing = {c for c in self.whistled} - {c for _, c in arrivals}
            self.whistled = sorted(missing)
            return False
        for at, code in arrivals:
            s.command("report_in", at, "report_in", self.p.department(code, self.street))
        self.lead = lead
        self.lead_actor = self.p.department(lead, self.street)
        rest = "、".join(self.dept_name(c) for c in others) or "有关部门"
        outcome = (
            f"会商议定：由{self.dept_name(lead)}牵头，会同{rest}和{self.units['street_name']}共同解决；"
            f"{self.text(self.theme.measures, '限期整改')}。"
        )
        s.command("consult", p.later(s.t, 1, 30), "consult", self.township, outcome=outcome, lead_department=lead)
        return True

    def rectify_and_close(
        self, doer: Actor, extender: Actor, *, closer: Actor, extend_days: tuple[int, int], big: bool = False
    ) -> None:
        rng, p, s, sc = self.rng, self.p, self.s, self.sc
        target = self.plan_deadline  # most units finish by the date on their own list
        if sc.extend:
            at = p.before(p.later(s.t, 1, 30), self.due)
            if at is not None:
                new_due = self.due + timedelta(days=rng.randint(*extend_days))
                s.command("extend", at, "extend", extender, new_due=new_due, reason=rng.choice(EXTENSION_REASONS))
                target = max(self.due, new_due - timedelta(days=2))
                self.due = new_due
        if sc.stuck == "rectifying":
            self.supervise(self.responsible_unit())
            return
        if sc.late:
            self.supervise(self.responsible_unit(), notices=1)
            rectify_at = p.by(s.t, self.supervised_due)
        else:
            earliest = p.later(s.t, 2, 24 * 5 if big else 30)
            rectify_at = p.by(earliest, target) if local_date(earliest) <= target else earliest
        done = self.text(self.theme.done, "问题已整改到位。")
        s.command("rectify", rectify_at, "rectify", doer, summary=done)
        for attempt in range(sc.failures):
            s.command(
                "verify_failed",
                p.resident(p.later(s.t, 3, 40, office=False)),
                "verify",
                self.verifier(),
                passed=False,
                reason=self.text(self.theme.failures, "整改不彻底，问题仍然存在"),
            )
            if sc.stuck == "reworking":
                self.supervise(self.responsible_unit())
                return
            rework_at = p.later(s.t, 1, 24)
            s.command(
                "plan",
                rework_at,
                "plan_rectification",
                doer,
                measures=f"针对居民检验意见返工（第{attempt + 1}次）：{self.text(self.theme.measures, '重新整改')}",
                responsible_unit=self.responsible_unit(),
                responsible_person=self.person_of(doer),
                deadline=local_date(rework_at) + timedelta(days=rng.randint(2, 7)),
            )
            s.command("rectify", p.later(s.t, 20, 120), "rectify", doer, summary=f"已按检验意见返工：{done}")
        verifier = self.verifier()
        s.command(
            "verify",
            p.resident(p.later(s.t, 2, 30, office=False)),
            "verify",
            verifier,
            passed=True,
            reason="居民现场检验，整改结果达标" if verifier is self.resident else "电话回访居民，确认整改结果达标",
        )
        self.finish(
            closer,
            methods=(
                (FeedbackMethod.MEETING, FeedbackMethod.WRITTEN_REPLY, FeedbackMethod.HOME_VISIT)
                if big
                else (FeedbackMethod.HOME_VISIT, FeedbackMethod.HOTLINE_CALLBACK, FeedbackMethod.ONLINE)
            ),
            summary=done,
        )

    def finish(self, closer: Actor, methods: Sequence[FeedbackMethod], summary: str = "") -> None:
        summary = summary or self.text(self.theme.done, "问题已处理完毕。")
        immediate = self.sc.path == "immediate"
        self.s.command(
            "close",
            self.p.later(self.s.t, 0.05, 0.5 if immediate else 8, office=not immediate),
            "close_case",
            closer,
            summary=f"整改结果达标、居民检验通过，予以销号。{summary}",
            suggestion_outcome=None,
        )
        self.after_close(closer if closer.role != Role.INTAKE_CLERK else CLERK, methods, summary)

    def after_close(self, giver: Actor, methods: Sequence[FeedbackMethod], summary: str) -> None:
        rng, p, s = self.rng, self.p, self.s
        immediate = self.sc.path == "immediate"
        if rng.random() < 0.15:
            methods = tuple(FeedbackMethod)
        method = rng.choice(methods)
        if method == FeedbackMethod.HOTLINE_CALLBACK:
            giver = OPERATOR
        content = f"{FEEDBACK[method].format(who=self.words['who'])}：{summary}"
        s.command(
            "feedback",
            p.later(s.t, 0.02, 0.4 if immediate else 30, office=not immediate),
            "give_feedback",
            giver,
            method=method,
            content=content,
        )
        if rng.random() > 0.92:
            return  # some residents never rate
        satisfaction = rng.choices([x for x, _ in SATISFACTION], weights=[w for _, w in SATISFACTION])[0]
        rater = OPERATOR if method == FeedbackMethod.HOTLINE_CALLBACK or rng.random() < 0.3 else self.resident
        s.command(
            "rate",
            p.resident(p.later(s.t, 0.2, 4 if immediate else 60, office=False)),
            "rate",
            rater,
            satisfaction=satisfaction,
            comment=rng.choice(COMMENTS[satisfaction]),
        )

    def supervise(self, unit: str, notices: int | None = None) -> None:
        """督办函: once the limit has passed, a new limit for the responsible unit;
        a second notice when that one passes too."""
        rng, p, s = self.rng, self.p, self.s
        notices = notices if notices is not None else rng.choice((1, 1, 2))
        limit = self.due
        for _ in range(notices):
            first_day = max(limit + timedelta(days=1), local_date(s.t))
            at = p.office(p.moment(first_day + timedelta(days=rng.randint(0, 2)), rng.uniform(8.6, 11.5)))
            if at <= s.t:
                at = p.later(s.t, 1, 4)
            new_due = local_date(at) + timedelta(days=rng.randint(3, 7))
            supervisor = rng.choice(SUPERVISORS)
            s.command(
                "supervise",
                at,
                "supervise",
                supervisor,
                responsible_unit=unit,
                new_due=new_due,
                notice=(
                    f"{SUPERVISOR_NAMES.get(supervisor.id, '督查室')}督办函：{{number}}号诉求件“{self.title}”"
                    f"已超过办结时限（{limit}），请{unit}于{new_due}前办结并反馈。"
                ),
            )
            limit = new_due
        self.supervised_due = limit

    def responsible_unit(self) -> str:
        if self.lead:
            return self.dept_name(self.lead)
        return self.units["street_name"] if self.sc.path in ("big", "escalated", "hard") else self.units["grid_name"]

    def person_of(self, actor: Actor) -> str:
        if actor.role == Role.DEPARTMENT and actor.unit:
            return self.p.staff(actor.unit, self.street)
        if actor.role == Role.GRID_LEADER:
            return self.p.ref.grid_leaders[actor.id].name
        if actor.role == Role.LEADER:
            return self.p.ref.leaders[actor.id].name
        return self.p.ref.township_officers[actor.id].name if actor.id in self.p.ref.township_officers else actor.id

    def verifier(self) -> Actor:
        return self.resident if self.rng.random() < 0.7 else OPERATOR


# --- running -----------------------------------------------------------------


def load_demo(cases: Cases, count: int = 600, *, seed: int = 2026, now: datetime | None = None) -> dict[str, int]:
    """Create `count` demo cases through the real commands, in time order over
    the `DAYS` days before `now`; returns counts of what happened."""
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    planner = _Planner(cases, rng, now)
    ages = sorted((DAYS * rng.random() ** 1.2 for _ in range(count)), reverse=True)
    scripts = []
    for index, days_ago in enumerate(ages):
        scenario = replace(COVERAGE[index]) if index < len(COVERAGE) else planner.scenario(days_ago)
        scripts.append(planner.plan(index, days_ago, scenario))

    steps = sorted((st for sc in scripts for st in sc.steps if st.at <= now), key=lambda st: (st.at, st.case, st.seq))
    original = cases.clock
    try:
        for step in steps:
            cases.clock = step.clock
            try:
                step.run(cases)
            except Exception as e:
                script = scripts[step.case]
                raise RuntimeError(
                    f"demo case #{step.case} ({script.scenario}) step {step.seq} {step.kind} at {step.at}: {e}"
                ) from e
            scripts[step.case].done.append(step.kind)
    finally:
        cases.clock = original

    kinds = Counter(k for sc in scripts for k in sc.done)
    closed = sum("close" in sc.done for sc in scripts)
    return {
        "cases": count,
        "events": len(steps),
        "closed": closed,
        "whistled": sum("whistle" in sc.done for sc in scripts),
        "returned": sum("return" in sc.done for sc in scripts),
        "extended": sum("extend" in sc.done for sc in scripts),
        "supervised": sum("supervise" in sc.done for sc in scripts),
        "supervision_notices": kinds["supervise"],
        "failed_verifications": kinds["verify_failed"],
        "suggestions": sum(sc.scenario.path == "suggestion" and "classify" in sc.done for sc in scripts),
        "open": count - closed,
    }
