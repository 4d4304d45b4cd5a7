"""The demo stories' words: themes (what a petition is about, in which
category, along which paths, and the phrases that tell it), names, places,
channels and the sentences officers write at each step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cases.vocabulary import FeedbackMethod, Satisfaction


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
