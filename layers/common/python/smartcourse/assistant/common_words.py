"""Common English words, for the assistant's check of a question's distinctive words (`evidence.common_word`)."""

from __future__ import annotations

#: Common English words (`evidence.common_word`), one form of each stem: the whole words among the first 10,000 of the
#: uncased BERT WordPiece vocabulary (google-research/bert, Apache-2.0; all-MiniLM-L6-v2, the embedder, uses it),
#: which is ordered by their frequency in English Wikipedia and BookCorpus; words of one or two letters left out.
COMMON_WORDS = """
    aaa aaron abandoned abbey abbot abbreviated abby abc abdul aberdeen abilities ability able aboard abolished
    aboriginal abortion about above abraham abroad abruptly absence absent absolutely absorbed abstract abu abundant
    abuse academic academy accent acceptable acceptance accepted access accessed accessible accident accidentally
    acclaimed accommodate accommodation accompanied accompanying accomplished accordance according accordingly account
    accredited accuracy accurate accused ace ache achieved achievement acid acknowledged acoustic acquired acquisition
    acres across act acted acting action activated active activist activities activity actor actress acts actually acute
    adam adapted add added addiction adding addition additional address addressed adds adelaide adequate adjacent
    adjoining adjusted administered administration administrative administrator admiral admired admission admit admitted
    adolf adopted adoption adrian adult advanced advancement advantage adventure advertising advice advised adviser
    advisor advisory advocacy advocate aerial aerospace aesthetic afc affairs affected affection affiliated affiliation
    afford afghan afghanistan afl afraid africa african after aftermath afternoon afterwards again against age aged
    agencies agency agenda agent ages aggregate aggressive aging agnes ago agony agreed agreement agricultural
    agriculture ahead ahmad ahmed aid aidan aided aids aim aimed aiming aims ain air airborne aircraft aired aires
    airfield airing airlines airplane airport airways aisle aka alabama alan alarm alaska albania albanian albany albeit
    albert alberta alberto albion album alcohol alec alert alex alexander alexandra alexandria alexis alfonso alfred
    algebra algeria algorithm ali alice alien aligned alignment alike alison alive all allan alleged allen alley
    alliance allied allison allmusic allocated allowed ally alma almost alone along alongside aloud alpha alphabet
    alpine alps already alright also alt altar altered alternate alternative although altitude alto altogether aluminum
    alumni always amanda amateur amazing amazon ambassador amber ambitious ambulance amelia amended amendment america
    american amid amino ammunition among amongst amos amount amsterdam amused amusement amy ana analog analysis analyst
    anatomy ancestors ancestry anchor ancient and anderson andre andrea andrew android andy angela angeles angelo anger
    angle anglican anglo angola angry angus animal animated animation anita ankle ann anna anne annexed annie
    anniversary announced announcement annoyed annual anonymous another answer antarctic antarctica antenna anthem
    anthology anthony anthropology anti anticipated anticipation antoine anton antonio anxiety anxious any anybody
    anymore anyone anything anyway anywhere apart apartment apex apollo apologize apology apostolic app apparently
    appeal appearance appeared apple applicable application applied apply appointed appointment appreciate appreciation
    apprentice approach appropriate approval approved approximately april aquatic arab arabia arabic arc arcade arch
    archaeological archaeology archbishop archdiocese archer archie architect architectural architecture archives arctic
    are area aren arena argentina argentine argued argument ari aria arise arizona arkansas arm armed armenia armenian
    armies armor armoured arms armstrong army arnold arose around arranged arrangement array arrested arrival arrived
    arrow arsenal art arthur article artifacts artificial artillery artist artistic arts artwork ash ashes ashley asia
    asian aside ask asked asking asks asleep aspects ass assassination assault assembled assembly asserted assessment
    assets assigned assignment assist assistance assistant associated association assumed assumption assured asteroid
    astronomical astronomy asylum ate athens athletes athletic atlanta atlantic atlas atmosphere atmospheric atomic
    atoms atop atp attached attack attained attempt attendance attended attention attitude attorney attracted attraction
    attractive attributed auburn auckland auction audience audio auditorium august augusta augustus aunt aurora austin
    australia australian austria austrian author authorities authority authorized auto autobiography automated automatic
    automatically automobile automotive autonomous autonomy autumn auxiliary ava availability available ave avenue
    average avery aviation aviv avoid awake award aware awareness away awesome awful awkward axe axis aye azerbaijan
    babe babies baby bach bachelor back background backpack backup backward bacon bacteria bad baden badge badly bag
    bags baha bailey baker balance balcony baldwin ball ballad ballet balloon ballot baltic baltimore ban band bang
    bangkok bangladesh bank banker bankruptcy banned banner baptist bar barbara barber barcelona barely bark barker barn
    baron baronet baroque barracks barrel barrett barrier barry bars bart barton base baseball based basement basic
    basically basilica basin basis basket basketball bass bassist bastard bat bates bath bathroom batman bats battalion
    batteries battery batting battle battlefield bavaria bay bbc bce beach beam beans bear beard beast beat beaten
    beatles beautiful beauty beaver became because beck become bed bedford bedroom beds bee beef been beer bees beetle
    before beg began begging begin beginning begun behalf behavior behaviour behind beijing being belarus belfast
    belgian belgium belgrade belief believe bell bella belly belonged beloved below belt ben bench bend beneath benedict
    benefit bengal bengali benjamin bennett benny benson bent bergen berkeley berlin bermuda bernard berry beside best
    bet beta beth betrayed better betty between beverly beyond bible biblical bicycle bid big bigger biggest bike bill
    billboard billion billy bin binary binding biography biological biology bird birmingham birth birthday bishop bit
    bitch bite biting bits bitter bizarre black blade blair blake blame blank blanket blast bleeding blend blessed blew
    blind blinked bliss block blog blond blood bloody bloom blow blown blue bmw board boat bob bobby bodies body boeing
    bold bolivia bolt bolton bomb bombardment bombay bomber bond bone bonnie bonus book boom boost booth boots border
    bore bored boring boris born borough borrowed bosnia boss boston botanical both bother bottle bottom bought boulder
    boulevard bounced bound boundaries boundary bout bow bowed bowl box boxer boxes boxing boy boyd boyfriend boys bra
    brad bradford bradley brady brain brake branch brand brandon brass brave brazil brazilian breach bread break
    breakdown breakfast breakthrough breast breath bred breeding breeze brent brett brewery brian brick bride bridge
    brief brien brigade brigadier bright brighton brilliant bring brisbane bristol britain british brittany broad
    broadcast broadcaster broader broadway broke broken bronze brooklyn brooks bros brother brotherhood brought brow
    brown bruce bruno brunswick brushed brussels brutal bryan bryant bubble buck bucket bud budapest buddha buddhism
    buddhist buddy budget buenos buffalo bug bugs builder building built bulgaria bulgarian bulk bull bullet bulletin
    bunch burden bureau burial buried burke burma burning burnt burst burton bury bus buses bush business businesses
    businessman busy but butler butt butter butterfly button buy buying buzz bye bypass byron byzantine cab cabin
    cabinet cable cadet caesar cafe cage cain cairo cake cal calculated calcutta caleb calendar calgary california
    called calm calvin cam cambodia cambridge camden came cameo camera cameron camp campaign campbell campus campuses
    can canada canadian canal canberra canceled cancelled cancer candidate candle candy cane cannon cannot canon
    canterbury canton canvas canyon cao cap capabilities capability capable capacity cape capita capital capitol caps
    captain captive captured car carbon card cardiff cardinal care cared career carefully carey cargo caribbean caring
    carl carlisle carlos carlton carmen carnegie carnival carol carolina caroline carpenter carpet carr carriage carried
    carrier carroll carry cars carson cart carter cartoon carved case casey cash casino cassidy cassie cast castle
    castro casual casualties cat catalog catalogue catch categories category cathedral catherine catholic cats cattle
    caught caused cavalry cave cbc cbs cdp ceased cecil cedar ceiling celebrated celebration celebrities celebrity cell
    cello cellular celtic cement cemetery census cent center central centre centuries century ceo cerambycidae
    ceremonial ceremonies ceremony certain certificate certification certified chad chain chair chairman challenge
    challenger chamber champagne champion championship chan chance chancellor change channel chaos chapel chapman
    chapter character characteristics characterized charge charitable charity charles charleston charlie charlotte charm
    chart charter chase chassis chat chateau cheap check cheek cheese chef chelsea chemical chemistry chen chennai
    cherry chess chest chester chi chicago chicken chief child childhood children chile chilean chill chin china chinese
    chip chloe chocolate choice choir choked choose chorus chose chosen chris christ christian christianity christie
    christina christine christmas christopher chronic chronicle chuck chuckled church churchill cia cigarette cincinnati
    cinema circa circle circuit circular circulation circumstances circus citation cited cities citing citizens
    citizenship city civic civil civilian civilization clad claimed claire clan clara clare clarence clarinet clark
    clary clash class classes classic classical classification classified classroom claude claudia clause claws clay
    clayton clean clear clement clenched clergy clerk cleveland clever click client cliff climate climbed clinic
    clinical clinton clip cloak clock close closer closest closet closure clothes cloud club clue cluster clutched clyde
    cnn coach coal coalition coast coastal coat cock code cody coffee coffin cognitive cohen coins col cold cole coleman
    colin collaborated collaboration collaborative collapsed collar colleagues collected collection collective collector
    college collegiate collins collision cologne colombia colombian colonel colonial colonies colony color colorado
    colour colt columbia columbus column columnist com combat combined come comeback comedian comedy comfort comfortable
    comic coming command commander commemorate commenced commentary commentator commented commerce commercial commission
    commissioner commit commitment committed committee commodore common commonwealth commune communicate communications
    communist communities community compact companies companion company comparable comparative compared comparison
    compatible compensation competed competition competitive competitors compilation complained complaints complement
    completed completion complex complexity compliance complicated complications components composed composer composite
    composition compound comprehensive compression comprises compromise computer computing con conceived concentrated
    concentration concept conception concerned concert concerto concluded conclusion concrete condemned conditions
    conducted conductor cone confederate confederation conference confession confidence confident configuration confined
    confirmed conflict confluence confronted confused confusion congo congregation congress congressional congressman
    conjunction connected connecticut connection connor conquered conquest conrad conscience conscious consciousness
    consecrated consecutive consensus consent consequences consequently conservation conservative conservatory
    considerable considerably considered consistent consists console consolidated consort consortium conspiracy
    constable constant constantine constantinople constituencies constituency constituted constitution constitutional
    constructed construction consul consultant consulting consumed consumer consumption contact container contains
    contemporary content contest contestants context continent continental continued continuity continuous continuously
    contract contractor contrary contrast contributed contributions contributor control controlled controller
    controversial controversy convent convention conventional conversation conversion converted convicted conviction
    convinced convoy cook cool cooper cooperative coordinates coordination coordinator cop copa cope copenhagen copies
    copper cops copy copyright coral cord core cork corn cornell corner cornwall coronation corporate corporation corps
    corpse correct correspondence correspondent corresponding corridor corrupt corruption cost costa costume cottage
    cotton couch could couldn council councillor counsel count counter counterpart countess counties countries country
    countryside county coup couple courage course court courthouse courtyard cousin cove coventry cover coverage cow
    cowboys cox crack craft craig crane crap crash crater crawford crawled crazy cream created creation creative creator
    creature credit creek crept crescent crest crew cricket cricketer cried cries crime criminal crimson crisis criteria
    critical criticised criticism criticized critics croatia croatian crops cross crossed crow crowd crown crucial crude
    cruel cruise cruiser crush cruz cry crying crystal cuba cuban cubic cubs cuisine cult cultivated cultivation
    cultural culture cumberland cunningham cup cupped cups curator curb cure curiosity curious curled currency currently
    curriculum curse curtain curtis curve custody custom customers cut cute cuts cutting cycle cyclone cylinder cyprus
    czech czechoslovakia dad daddy daemon dagger daily dairy daisy dakota dale dallas dalton dam damage dame damien damn
    damon damp dan dana dance dancer danger dangerous daniel danish danny dante dare dark darker darkness darling darren
    darwin das dash data database date dated dating daughter dave david davidson davis dawn dawson day daylight days
    daytime dead deaf deal dealer dealt dean dear death debate debris debt debut dec decades decay deceased december
    decent decided decision decisive deck declared declined decorated decoration decorative decrease decree dedicated
    dedication dee deemed deep deeper deer def default defeated defence defendant defender defending defense defensive
    defined definitely definition defunct degree degrees deity del delaware delayed delegates delegation delhi
    deliberately delicate delicious delight delivered delivery dell della delta demand demise demo democracy democrat
    democratic demolished demolition demon demonstrated demonstration den denied denmark dennis dense density dental
    denver deny departed department departure dependent depending depicted deployed deployment deposits depot depression
    depth deputies deputy der derby derek derived des descendants descended descent described description desert deserve
    design designated designer desire desk desperate despite destination destiny destroyed destroyer destruction
    detached detachment details detected detection detective detention determined detroit deutsche developed developer
    development device devil devon devoted devotion diagnosed diagnosis dialect dialogue diameter diamond diana diane
    diary diaz dick dictionary did didn die died diego dies diesel diet differ difference different differential
    difficult difficulties difficulty dig digging digital dignity dim dimensional dimensions din dining dinner diocese
    diploma diplomat diplomatic dipped directed direction director directorate dirt dirty disabilities disability
    disabled disappearance disappeared disappointed disappointment disaster disbanded disbelief disc discharge
    discipline disco discontinued discovered discovery discrimination discuss discussed discussion disease disgust dish
    disk dismissed disney disorder displaced displacement display disposal dispute dissolution dissolved distance
    distant distinct distinction distinctive distinguished distracted distress distributed distribution district
    disturbed dive diverse diversity divided divine diving division divorce dixon dna doc dock doctor doctoral doctorate
    doctrine documentary documents dodge dodgers does doesn dog dogs doi doing doll dollars dolphins domain dome
    domestic dominant dominated dominic dominican dominion don donald donated donations done dong donna donovan doom
    door doorway dorothy dorsal dos dose dot double doubt doug douglas dove down download downstairs downstream downtown
    doyle dozen draft drag dragged dragon drainage drained drake drama dramatic dramatically drank draw drawer drawn
    dream dresden dress dressed drew dried drifted drill drink drive driven driver driveway drop dropped drove drowned
    drug drummer drums drunk dry dual dub dubai dubbed dublin duchess duchy duck dude dudley due duet dug duke dull dumb
    duncan duo duration durham during dust dusty dutch duties duty dvd dwarf dwelling dying dylan dynamic dynasty each
    eager eagle ear earl earlier earliest early earned ears earth earthquake ease eased easier easily east easter
    eastern easy eat eaten eating ecclesiastical echo eclipse ecole ecological ecology economic economist economy
    ecuador eddie eden edgar edge edged edinburgh edited edith edition editor editorial edmonton edmund eds educated
    education educational educator edward edwin effect effective effectiveness efficiency efficient effort egg eggs ego
    egypt egyptian eight eighteen eighteenth eighth eighty either elaborate elbow elder eldest eleanor elected election
    electoral electorate electric electrical electricity electron electronic elegant elementary elements elena elephant
    elevated elevation elevator eleven eleventh eli eligibility eligible eliminated elimination elisabeth elite eliza
    elizabeth ella ellen elliot elliott ellis else elsewhere elvis email embarked embarrassed embassy embedded embrace
    emerged emergency emeritus emerson emi emigrated emily emissions emma emmy emotional emotions emperor emphasis
    emphasized empire employed employee employer employment empress empty enabled enacted enclosed encoded encounter
    encouraged encyclopedia end endangered ended endemic ending endless endorsed ends enemies enemy energy enforcement
    engaged engagement engine engineering england english enhanced enjoyed enlarged enlisted enormous enough enrolled
    enrollment ensemble ensure entered enterprise entertainment enthusiasm entire entities entitled entity entrance
    entrepreneur entries entry envelope environment environmental enzyme epic episcopal episode equal equality equation
    equipment equipped equity equivalent era erected eric erie erik erin ernest ernst error erupted escape escort
    especially espn essays essence essential essex est established establishment estate estimated estonia estonian etc
    eternal eternity ethan ethical ethics ethiopia ethnic eugene euro europa europe european eurovision eva evacuated
    evaluation evangelical evans eve evelyn even event eventually ever every everybody everyday everyone everything
    everywhere evidence evident evil evolution evolutionary evolved exactly exam examination example exceed excellence
    excellent except exception exceptional excess excessive exchange excited excitement exclaimed excluded exclusive
    excuse executed execution executive exempt exercise exeter exhausted exhibited exhibition exile existence existing
    exit exotic expanded expansion expected expedition expelled expense expensive experience experiment experimental
    expert expertise expired explained explanation explicitly exploded explore explorer explosion explosive export
    exposed exposition exposure express expressed expression expressway extant extended extension extensive extent
    exterior external extinct extra extraordinary extremely eye eyebrows eyed eyes fabric facade face facebook faced
    facial facilitate facilities facility facing fact faction facto factor factories factory faculty fade faded failed
    failure faint fair fairy faith faithful fake falcon fall fallen false fame familiar families family famous fan fancy
    fangs fans fantastic fantasy far fare farewell farm farmers farther fashion fast faster fastest fat fatal fate
    father fault favor favorable favorite favour favourite fbi fear feast feat feathers features feb february fed
    federal federation fee feed feedback feel fees feet felix fell fellow fellowship felt female feminine feminist fence
    ferdinand ferguson fernandez fernando ferrari ferry festival feud fever few fewer fiba fiber fiction fictional field
    fierce fifa fifteen fifth fifty fight fighter figure fiji file filed filipino filled film filmmaker filter fin final
    finalist finance financial find fine finest fingers fingertips finished finite finland finn finnish fiona fire fired
    firing firm first fiscal fischer fish fisher fisheries fist fit fitness fitted fitzgerald five fix fixed flag
    flagship flames flank flash flat fled flee fleet flesh fletcher flew flexible flicked flies flight flint flip
    flipped floating flood floor flora florence florida flour flow flowers flown floyd fluid flushed flute fly flying
    flynn focus focused fog folded folk folklore followers following fond food fool foolish foot footage football
    footballer footsteps for forbes forbidden force ford forehead foreign forest forestry forever forewings forget
    forgive forgot forgotten fork form formal format former formula fort forth fortified fortress fortune forty forum
    forward fossil foster fought foul found founder fountain four fourteen fourth fox fraction fragile fragments frame
    framework france francesco franchise francis francisco franco francois frank frankfurt frankie franklin franz fraser
    fraternity fraud freak fred frederick free freed freedom freeman freestyle freeway freezing freight french
    frequencies frequency frequently fresh freshman freshwater freyja friday fried friedrich friend friendship
    frightened fringe fritz frog from front frontier frost frowned froze frozen fruit frustrated frustration fuck fuel
    full fuller fully fun function functional fund fundamental funeral funk funny fur furious furniture further
    furthermore fury fuselage fusion future gabe gable gabriel gaelic gage gained galaxy galleries gallery gambling game
    gameplay gaming gamma gandhi gang gap garage garbage garcia garden gardner garion garnered garrett garrison gary gas
    gasped gastropod gate gateway gathered gauge gave gavin gay gaze gazed gazette gear gen gender gene genera general
    generated generation generator generic generous genesis genetic geneva genius genome genre gentle gentleman
    gentlemen gently genuine genus geoffrey geographic geographical geography geological geology geometry george
    georgetown georgia georgian gerald gerard german germany gesture get gets getting ghana ghost giant gibraltar gibson
    gideon gift gil gilbert giles gill giovanni girl girlfriend giuseppe give given giving glacier glad glanced glared
    glasgow glass glasses glen glenn glimpse global globe gloria glory gloucester gloves glow gmina goal goalkeeper goat
    god goddess gods goes going gold golden golf gomez gone gonna gonzalez good goodbye google goose gordon gore
    gorgeous gospel got gothic gotta gotten governance governing government governmental governor gown grab grabbed
    grace grade gradually graduated graduation graham grain gram grammar grammy gran grand grandchildren granddaughter
    grandfather grandma grandmother grandson granite grant graph graphics grasp grass grateful grave gravel gravity gray
    great greater greatest greece greek green greeted greg gregory grew grey grid grief griffin grim grin grinned grip
    gripped groaned grocery gross ground group grove growing growled grown growth guarantee guaranteed guard guardian
    guatemala guess guessed guest guidance guide guidelines guild guilt guilty guinea guitar guitarist gulf gun guns
    guru gus gustav gut guy guys gwen gym gymnasium habit habitat had hadn hair haiti hal hale half halfway halifax hall
    hallway halt ham hamburg hamilton hamlet hammer hammond hampshire hampton han hand handball handful handle handsome
    hanging hank hanna hannah hans hansen happened happily happiness happy harbor harbour hard hardcore harder hardware
    hardy harley harm harmony harold harper harris harrison harry harsh hart hartford harvard harvest harvey has hasn
    hassan hastings hat hatch hate hated hatred hauled haunted have haven having hawaii hawaiian hawk hay hayes head
    headquarters healing health healthcare healthy hear heard heart heartbeat heat heath heather heaven heavier heavily
    heavy heavyweight hebrew hectares hector heels height heinrich heir held helen helena helicopter hell hello helmet
    help helpless helsinki hence henderson henri henry her herald herb herbert here heritage herman hermann hernandez
    hero hers herself herzegovina hesitated hesitation hey hid hidden hide hiding hierarchy higgins high higher highest
    highland highlighted highway hiking hill him himself hindi hindu hint hip hips hire hired his hispanic hissed
    historian historic historical history hit hitler hits hitting hiv hms hockey hold holden holder hole holiday holland
    hollow holly hollywood holmes holocaust holt holy home homeland homeless homer hometown hon honda honest honey hong
    honor honorable honorary honour hood hook hop hope hoped hopefully hoping hopkins horace horizon horizontal horn
    horrible horror horse hospital host hostage hostile hot hotel hours house householder households houston how howard
    howe however http hub hudson hug huge hugged hugh hugo huh hull human humanitarian humanities humanity humor hundred
    hundreds hung hungarian hungary hunger hungry hunt hunter hurling hurricane hurried hurry hurt husband hut hybrid
    hyde hyderabad hydrogen hypothesis ian iata ibm ibn ibrahim ice iceland icon icy idaho idea ideal identical
    identification identified identify identity ideology idiot idol ignored iii ill illegal illinois illness illusion
    illustrated illustrations image imagery imagine immediately immigrants immigration immortal immune impact imperial
    implementation implications implies importance important imported imposed impossible impressed impression impressive
    imprisoned imprisonment improved improvement inability inaugural inaugurated inc inception inch incident inclined
    including inclusion income incomplete incorporated increased increasingly incredible incredibly incumbent indeed
    independence independent index india indian indiana indianapolis indicated indication indies indigenous individual
    indo indonesia indonesian indoor induced inducted industrial industries industry inevitable infant infantry infected
    infection infinite influence influential informal information infrastructure ing ingredients inhabitants inhabited
    inheritance inherited initially initiated initiative injection injured injuries injury ink inland inmates inn inner
    innings innocence innocent innovation innovative input inquiry insane inscription insects inserted inside insight
    insisted inspection inspector inspired installed instance instantly instead instinct institute institutional
    institutions instructed instruction instructor instrumental instruments insurance intact integral integrated
    integration integrity intel intellectual intelligence intelligent intended intense intensity intensive intent
    intention inter interact interaction interactive interchange interest interface interference interim interior
    intermediate internal international internet interpretation interrupted intersection interstate interval
    intervention interview intimate into introduced introduction invaded invasion invented invention inventor inventory
    invested investigate investigation investment investors invisible invited involved involvement ion iowa ira iran
    iranian iraq iraqi ireland irene iris irish iron irregular irrigation irving isaac isabel isabella isbn islam
    islamic island islander isle isn iso isolated isolation israel israeli issue istanbul italia italian italy items its
    itself itunes itv ivan ivory ivy jace jack jacket jackie jackson jacksonville jacob jacques jade jail jake jam
    jamaica james jamie jan jane janeiro janet january japan japanese jared jason java jaw jax jay jazz jealous jean
    jeff jefferson jeffrey jenkins jenna jennifer jenny jeremy jerked jerome jerry jersey jerusalem jesse jessica jessie
    jesus jet jets jewel jewelry jewish jews jill jim jimmy jin joan job jobs joe joel joey johan johann john johnny
    johnson johnston joined joint joke jon jonas jonathan jones jordan jorge jose josef joseph josh joshua journal
    journalism journalist journey joy joyce juan jubilee judaism jude judge judgment judicial judith judy juice jules
    julia julian julie juliet julius july jump jun junction june jung jungle junior jupiter jurisdiction jury just
    justice justin juvenile kai kane kansas kara karen karl karnataka kashmir kat kate katherine katie kay kazakhstan
    keen keep keeper keith kelly ken kennedy kenneth kenny kent kentucky kenya kept kerala kerry kevin key keyboards
    keys khan kick kid kidding kidnapped kids kiev killed killer kilometers kilometres kim kin kind kindergarten king
    kingdom kingston kirk kiss kit kitchen klein knees knelt knew knife knight knives knocked knockout knots know
    knowledge known knox knuckles kolkata kong korea korean kosovo krishna kumar kurt kuwait kyle kylie lab label labor
    laboratories laboratory labour labs lace lack lacrosse ladder ladies lady laid lake lamb lambert lamp lancashire
    lancaster lance land landmark landscape lane lang language lanka lantern lap laps laptop lara large larger largest
    larry larvae las laser last late later lateral latest latin latino latter latvia laughed laughter launched laura
    laurel lauren laurence lava law lawn lawrence laws lawsuit lawyer lay layer laying layout lea lead leader leadership
    leaf league leaned leap learning lease least leather leave lebanese lebanon lecture lecturer led lee leeds left leg
    legacy legal legend legendary legion legislation legislative legislature legitimate legs leicester leigh leipzig
    leisure length lengthy lens leo leon leonard leopold les lesbian leslie less lesser lessons let lethal lets letter
    letting level levi levy lewis lgbt liam liberal liberation liberty libraries library libya licence license licked
    lid lie lied lies lieutenant life lifelong lifestyle lifetime lifted liga light lighter lighthouse lightning
    lightweight like liked likewise lil lily lima limbs limestone limited lin lincoln linda lindsay line lineage linear
    lined liner lineup linguistic link linux lion lip lips liquid liquor lisa lisbon list listen lit literacy literally
    literary literature lithuania lithuanian little liu live lived liver liverpool livestock living liz llc lloyd load
    loan lobby local locality located location locked locker locomotives lodge log logan logic logical logistics logo
    lok london lonely long longer longest longtime looked loop loose lopez lord lorenzo los lose loser losing loss lost
    lot lots lotus lou loud louder louis louise louisiana louisville lounge love loved lover loving low lower lowest
    loyal loyalty ltd luc lucas lucia lucien luck lucky lucy ludwig luis luke luna lunar lunch lungs lust luther
    lutheran luxembourg luxury lying lynch lynn lyon lyrics mac macdonald macedonia macedonian machine machinery mack
    mackenzie mad madagascar madame made madison madness madonna madras madrid mae magazine maggie magic magical
    magnetic magnificent magnitude magnus maharashtra maid maiden mail main mainland mainstream maintained maintenance
    majesty major majority make maker makeup making malay malayalam malaysia malaysian malcolm male mall malta mama
    mammals man managed management manager manchester mandate mandatory manga manhattan manila manitoba mann manner
    manor mansion manual manuel manufacturer manufacturing manuscript many maori map maple mapping maps mar marathon
    marble marc marcel march marco marcus mare margaret margin maria marie marina marine mario marion maritime mark
    marker market marquis marriage married marry mars marsh marshal marshall martha martial martin martinez marty marvel
    marvin marx mary maryland mascot mask mason mass massachusetts massacre massive master mat match mate material
    maternal math mathematical mathematician mathematics matrix matt matter matthew mattress mature maurice max maximum
    maxwell may maya maybe mayor mccarthy mcdonald meadow meal mean meant meantime meanwhile measure measurement meat
    mechanical mechanics mechanism medal medalist media median medical medicine medieval mediterranean medium meet meg
    mega megan mel melanie melbourne melissa melody melted member membership membrane memoir memorable memorial memories
    memory memphis men mental mentioned mentor menu mercedes mercer merchant mercury mercy meredith merely merged merger
    merit merry mess message messenger met metal metallic meters method methodist metres metric metro metropolitan
    mexican mexico meyer mhz mia miami mice michael michel michelle michigan mick mickey micro microsoft mid middle
    middlesex midfielder midland midnight midst midway midwest might mighty migrated migration miguel mike mikhail milan
    mild miles military militia milk mill millennium miller millimetres million milton milwaukee min mind mine mineral
    miners ming mini miniature minimal minimum mining miniseries minister ministry minneapolis minnesota minor minority
    mint minutes miracle miranda mirror miserable miss missile mission missionaries missionary mississippi missouri mist
    mistake mistaken mister mistress mit mitch mitchell mix mixed mixing mixture mlb moaned mob mobile mobility mock
    mode model moderate modern modest modifications modified module mohammad mohammed moist molecular molecules mollusk
    molly mom moment momentum mon monarch monarchy monastery monday monetary money monica monitor monk monkey monroe
    monster montana monte montenegro montgomery months montreal monument mood moon moonlight moore moral more moreover
    morgan morning morocco morris morrison mortal mortality morton moscow moses mosque moss most moth mother motion
    motivated motor motorcycle motorway motto mound mount mountain mouse mouth move moved movement movie moving mozart
    mph mps mrs mtv much mud muhammad muller multi multiple mum mumbai mumbled munich municipal municipalities
    municipality munster murder murderer murmured murphy murray muscles muscular museum music musical musicians muslim
    must muttered mutual mvp myanmar myself mysterious mystery myth mythology nacional nadu nails naked name named
    naming nancy naomi naples napoleon narrative narrator narrow nasa nascar nash nashville nasty natalie nate nathan
    national nationalist nationality nations nationwide native nato natural nature nautical naval nave navigation navy
    nazi nba nbc ncaa neal near nearby nearest nebraska necessarily necessary necessity neck necklace ned nee need
    needle negative negotiated negotiations negro neighborhood neighboring neighbourhood neighbouring neil neill neither
    nelson neo nepal nephew nerve nervous nervously nest net netherlands network neutral nevada never nevertheless new
    newark newcastle newer newfoundland newly newman newport news newspaper newton next nfl nhl nice nicholas nick
    nickname nicolas nicole niece nielsen nigel nigeria nigerian night nightmare nina nine nineteen nineteenth ninety
    nintendo ninth nixon noah nobel nobility noble nobody nod nodded node nods noel noise nolan nominated nomination
    nominee non none nonetheless noon nor nora nordic norfolk norm normal norman normandy north northeast northeastern
    northern northwest northwestern norton norway norwegian norwich nose not notable notably note noted nothing noticed
    noting notion notorious notre nottingham nov nova novel novelist november now nowadays nowhere nsw nuclear nucleus
    number numerous nurse nursery nuts oak oakland oaks oath obama object objective oblast observatory observed observer
    obtained obvious obviously occasionally occasions occupation occupied occupy occurred occurs ocean oclc oct october
    odd odds off offense offensive offered office officer official offs offshore offspring often ohio oil okay oklahoma
    old older oldest olive oliver olivia olympics omaha omar once one ones ongoing online only ontario onto onwards open
    opera operated operational operations operative operator opinion opponent opportunities opportunity opposed opposite
    opposition opted optical option optional oral orange orbit orchestra orchestral ordained order ordinary ore oregon
    org organ organic organisation organisms organization organizational oriental oriented origin original originated
    orlando orleans orthodox osaka oscar oslo other otherwise ottawa otto ottoman ought our ourselves out outbreak
    outcome outdoor outer outfit outlets outline output outside outskirts outstanding oval over overall overcome
    overhead overlooking overnight overseas overtime overwhelming owe owed owen owing owl own owned owner ownership owns
    oxford oxygen pablo pace pacific pack package pad page pageant paid pain painful painter painting pair pakistan
    pakistani palace pale palestine palestinian palm palmer pan panama panel panic panthers panties pants papa papal
    paper paperback papua par para parachute parade paradise parallel parameters paramount parents paris parish park
    parker parkway parliament parliamentary parody parsons part partially participants participated participation
    particles particular parties partition partner partnership party passage passed passenger passion passionate passive
    passport past pastor pastoral pat patch patent path pathway patience patients patriarch patricia patrick patriots
    patrol patron patted pattern patterson paul paula paulo paused paved pavilion pay paying payment payne pays pbs pdf
    peace peaceful peak pearl pearson peasants pedro peer pen penalties penalty peninsula penn pennsylvania penny
    pension people pepper per perceived percent percentage perception percussion percy perez perfect performance
    performed performer perhaps perimeter period perkins permanent permission permit permitted perry persian person
    personal personalities personality personnel perspective persuaded perth peru pet pete peter petersburg peterson
    petition petroleum petty phantom phase phd phenomena phenomenon phi phil philadelphia philharmonic philip philippe
    philippines phillips philosopher philosophical philosophy phoenix phone photo photographer photographic photographs
    photography phrase physical physician physicist physics pianist piano picked picnic picture pie piece pier pierce
    pierre pig pike pile pillow pilot pin pine pink pinned pinyin pioneer pipe pipeline piper pirates pissed pistol pit
    pitch pitcher pittsburgh pity pizza place placement plague plain plan planet planned plant plaque plasma plastic
    plate plateau platform platinum played player playoffs playstation playwright plaza pleaded pleasant please pleasure
    plenty plot plug plus plymouth pocket poems poet poetry point poison poker poland polar pole police policies policy
    polish polite political politician politics poll pollution polo pond pool poor pop pope popped popular popularity
    populated population porch port portable portal porter portfolio portion portland portrait portrayed portsmouth
    portugal portuguese pose posed position positive possess possessed possession possibilities possibility possible
    possibly post postal poster posthumously pot potential potter pottery pounds poured poverty powder powell power
    powerful practical practice pradesh prague prairie praised pratt pray prayer pre preceding precious precipitation
    precise precision predators predecessor predicted predominantly prefecture prefer preference preferred pregnancy
    pregnant preliminary premier premiership premises premium preparatory prepared presbyterian presence present
    presenter preserved presidency president presidential press pressed pressure prestigious preston presumably pretend
    pretty prevent prevention previous previously prey price pride priest primarily primary prime primitive prince
    princess princeton principal principles print prior priority prison prisoners privacy private prix prize pro
    probability probably problem procedure proceed proceedings process processes processor proclaimed produced producer
    production productive products prof profession professional professor profile profit program programming progress
    progressed progressive prohibited prohibition project prolific prominence prominent promise promoted promotion
    promotional prompted prone pronounced proof propaganda proper properties property prophet proportion proposal
    proposed prose prosecution prosecutor prospect protagonist protect protection protective protein protest protestant
    protesters protocol prototype proud proved proven provided providence provider province provincial provisional
    provisions proximity prussia prussian psychiatric psychic psychological psychology pub public publicity published
    publisher puerto pulled pulse pump punch punishment punjab punk pupils purchased pure purple purpose purse pursue
    pursuit pushed put puts putting puzzle pyramid qatar qing qualification qualified qualifier qualifying qualities
    quality quantities quantity quantum quarry quarter quarterback quarterfinals quartet que quebec queen queensland
    quest question quickly quiet quinn quite quoted rabbi rabbit race raced rachel racial racing radar radiation radical
    radio radius raf rafael rage raid raiders rail railroad railway rain rainbow rainfall raised raj raja rally ralph
    ram ramon ramp rams ran ranch randall randolph random randy range rangers ranked rao rap rape raphael rapidly rapper
    rare rat rate rated rather rating ratio rational rats raven raw ray raymond rays rca reached react reaction reactor
    read reader readily ready reagan realised realistic reality realized really realm rear reason reasonable rebecca
    rebellion rebels rebounds rebuilt recalled received receiver recent reception receptor recipient recognised
    recognition recognized recommended reconnaissance reconstruction record recovered recovery recreation recreational
    recruited rectangular rector recurring red redesignated reds reduced reduction reed reef referee reference
    referendum referred refers reflected reflection reform refugee refugees refused regained regarding regardless regent
    regime regiment regina region regional register registration regret regular regulated regulations regulatory
    rehabilitation reid reign reinforced rejected related relations relationship relatively relaxed relay released
    relegated relegation relevant reliable relied relief relieved religion religious relocated reluctantly rely
    remainder remained remake remarkable remarked remember reminded remix remnants remote removal removed renaissance
    renamed rendered rene renewed renovated renovation renowned rent rental reopened repair repeated repertoire replaced
    replacement replied reply reported reporter representative represented reprinted republic republican reputation
    request required requirements rescue research researchers resembles reserve reservoir residence residential
    residents residing resigned resist resistance resistant resolution resolved resort resources respect respectively
    responded response responsibilities responsibility responsible rest restaurant restored restricted restrictions
    result resumed retail retained retired retirement retreat retrieved returned reunion reunited rev revealed
    revelation revenge revenue reverend reverse review reviewer revised revival revived revolt revolution revolutionary
    reward rex rey reyes reynolds rhine rhode rhythm ribbon ribs rica rican ricardo rice rich richard richardson
    richmond rick ricky rico rid ride rider ridge ridiculous riding rifle right rigid riley rim ring rio riot rip ripped
    rise rising risk rita ritual rival rivalry river riverside rna road roar rob robbery robbie robe robert roberto
    robertson robin robinson robot rochester rock rocket rocky rod rode rodriguez roger rogue roland role rolled roller
    roma roman romance romania romanian romanized romantic rome romeo ron ronald ronnie roof rookie room roosevelt roots
    rope rosa rose ross roster rotating rotation roth rotten rouge roughly round route routine rovers row rowing rows
    roy royal rpm rubbed rubber ruby rude rudolf rue rugby ruins ruled ruler rules ruling rumors run runner running runs
    runway rural rush russell russia russian rusty ruth ryan ryder sabha sack sacramento sacred sacrifice sad saddle
    sadly sadness safe safer safety saga sage said sailed sailors saint sake salary salem sales sally salmon salon salt
    salvador salvation sam samantha same sample samuel san sanchez sanctuary sand sanders sandra sandstone sandwich
    sandy sang sank sanskrit santa santiago santos sao sara sarah saskatchewan sat satellite satisfaction satisfied
    satisfy saturday sauce saudi savage savannah save saved saving saw saxon saxony saxophone say saying says scale scan
    scandal scanned scared scarlet scary scattered scenario scene scenic scent scheduled scheme schmidt scholars
    scholarship school science scientific scientists scope scored scorer scotia scotland scots scott scottish scout
    scrambled scratch scream screen screenplay screenwriter screw script sculptor sculpture sea seal sean search seas
    season seasonal seat seattle sebastian sec second secondary secret secretary section sector secular secure
    securities security see seed seeing seek seemed seemingly seen sees segment seized selected selection selective self
    selling semester semi semifinals seminary sen senate senator send senior sense sensitive sensor sent sentence seoul
    separate separation september sequel sequence serbia serbian sergeant serial series serious seriously servant served
    server service session set seth sets setting settled settlement settlers seven seventeen seventh seventy several
    severe sex sexual sexy seymour shade shadow shaft shah shakespeare shaking shall shallow shame shane shanghai
    shannon shape share shark sharon sharp shattered shaw shawn she shed sheep sheer sheet sheffield sheikh shelf shell
    shelter shepherd sheridan sheriff sherman shi shield shifted shining shiny ship shipping shire shirley shirt shit
    shiva shiver shock shoes shook shooter shooting shop shopping shore short shortened shorter shot shotgun should
    shoulder shouldn shouted shoved show showcase shower shown shrine shrug shrugged shut shuttle shy siblings sicily
    sick side sided sidewalk sideways sidney siege sierra sighed sight sigma signal signature signed significance
    significant silence silent silk silly silva silver similar similarities simmons simon simple simplified simply
    simpson simulation simultaneously sin since sinclair singapore singer singh singing single singular sink sip sir
    sister sit sitcom site sits sitting situated situation six sixteen sixth sixty size sized skating skeleton sketch
    ski skiing skills skin skip skirt skull sky slam slammed slapped slate slave slavery sleep sleeve slender slept
    slick slid slightly slim slip slipped slope slot slovak slovakia slovenia slower slowly small smaller smallest smart
    smell smile smith smoke smooth snail snake snap snapped sneak snow soaked soap soccer social socialist societies
    society sociology sodium sofa sofia soft softball software soil solar sold soldiers sole solid solo solomon solution
    solve some somebody somehow someone somerset something sometimes somewhat somewhere son song songwriter sonic sonny
    sons sony soon sooner sophia sophie sophisticated soprano sorry sort sought soul sound soundtrack soup source south
    southampton southeast southeastern southern southwest southwestern sovereign sovereignty soviet sox spa space
    spacecraft spain span spanish spare sparhawk spark spatial speak speaker spear special specialist specialized
    specialty species specific specifically specified specimens spectacular spectators spectrum speculation speech speed
    speedway spell spencer spend spent sphere spider spike spilled spin spinning spiral spirit spiritual spite split
    spoke spoken sponsored sponsorship sports spot spotted spray spread spring springfield sprint spun spur spy squad
    squadron square squeezed sri stabbed stability stable stack stadium staff stage stained staircase stairs stakes
    stalin stall stamp stan stance standard standing stanford stanley star stark starring started starter startled state
    statement statewide static station statistical statistics status statute stay steadily steady steal steam steel
    steep steering stefan stella stem step stephanie stephen stepped stereo sterling stern steve steven stevenson
    stewart stick stiff still sting stint stirred stock stockholm stoke stole stolen stomach stone stood stop stopped
    storage store storey stories storm story storyline straight straightened strain strait strand strange stranger
    strategic strategies strategy straw streak stream street strength strengthen stress stressed stretched strict strike
    striker string strip stripped strode stroke strong stronger strongest struck structural structure struggle sts
    stuart stuck students studies studio study stuff stumbled stunned stupid stuttgart style sub subdivision subfamily
    subject submarine submerged submission submit submitted subsequently subsidiary subspecies substance substantial
    substitute subtle subtropical suburb suburban subway succeed succeeded success successful succession successive
    successor such sucked sudan suddenly sue sued suffered sufficient suffolk sugar suggested suggestion suicide suit
    suitable sullivan sultan sum summary summer summit summoned sun sunday sung sunk sunlight sunny sunset sunshine
    super superintendent superior superman supernatural supervised supervision supervisor supplement supplies supply
    support supporters supposed suppressed supreme sur sure surface surge surgeon surgery surgical surname surprise
    surprisingly surrender surrey surrounding surveillance survey survival survived survivors susan suspected suspended
    suspension suspicion suspicious sussex sustainable sustained sutton swallowed swamp swan swear sweat sweden swedish
    sweep sweet sweetheart swept swift swim swimmer swimming swing swiss switch switzerland swollen sword swore sworn
    swung sydney sylvia symbol symbolic sympathetic sympathy symphony symptoms synagogue syndrome synonym synthesis
    synthesizer synthetic syracuse syria syrian system systematic table tackles tactical tactics tag tail taiwan take
    taken taking tale talent talk tall taller tallest tamil tampa tan tang tank tanner tanzania tap tape tapped tara
    target task tasmania taste tate tattoo taught tavern tax taxes taxi taylor tea teacher teaching team teammate tears
    teasing tech technical techniques technological technologies technology ted teddy teen teenage teenager teeth tehran
    tel telecommunications telegraph telephone telescope television tell telugu temper temperature temple tempo
    temporarily temporary ten tend tendency tender tennessee tennis tenor tense tension tent tenth tenure teresa term
    terminal terminated terminus terrace terrain terrestrial terrible terrified territorial territories territory terror
    terrorism terrorist terry tertiary tessa test testament testimony texas text textile thai thailand thames than thank
    that the theater theatre theatrical theft their them themselves then theodore theological theology theorem
    theoretical theories theory therapy there thereafter thereby therefore thermal these thesis they thick thief thighs
    thin things think third thirteen thirty this thomas thompson thomson thoroughly those though thought thousand thread
    threat threatened three threshold threw thriller throat throne through throughout throw thrown thrust thumb thunder
    thursday thus tibet tibetan ticket tide tie tied tier ties tiger tight tightened tighter tiles till tilted tim
    timber time timing timothy tin tina tiny tip tipped tips tire tired tissue title titular tobacco toby today todd toe
    toes together toilet tokyo told toledo toll tom tomas tomatoes tomb tommy tomorrow ton tone tongue tonight tonnes
    tons tony too took tools tooth top topics topped tops torch tore torn tornado toronto torpedo torres torture tossed
    total touch touchdown tough tour tourism tourist tournament toward towel tower town township toxic toy toyota toys
    trace track tract tracy trade trademark traders tradition traditional traffic trafficking tragedy trail trailer
    trainer training traits tram trans transactions transfer transferred transformed transit transition translated
    translation translator transmission transmitted transmitter transparent transport trap trapped trash trauma travel
    travelled travis tray treasure treasurer treasury treated treatment treaty tree trek trembling trend trent trevor
    tri trial triangle tribal tribe tribunal tribune tributary tribute trick tried tries trigger trilogy trim trinidad
    trinity trio trip triple tristan triumph troops trophy tropical trouble trout troy truck true truly trump trumpet
    trunk trust trustee truth try trying tube tucked tucker tuesday tug tugged tumor tune tunisia tunnel turin turkey
    turkish turks turned turner turtle twelfth twelve twentieth twenty twice twilight twin twisted twitter two tyler
    type typically ucla uefa ufc uganda ugly ukraine ukrainian ulster ultimately ultra umbrella unable unanimous unaware
    uncertain uncertainty uncle unclear uncomfortable uncommon unconscious uncredited und under undergo undergraduate
    underground underlying underneath understand understood undertaken undertook underwater underwent underworld
    unemployment unesco unexpected unfortunately unhappy unified uniform unincorporated union unique united unity
    universal universe universities university unknown unless unlike unnamed unofficial unreleased unsuccessful unsure
    until unusual unveiled upcoming updated upgraded upon upper upright uprising ups upset upstairs upward urban urdu
    urge urged urgent uruguay usa usage usd use used useful useless users uses using uss ussr usually utah utc utility
    utilized utterly vacant vacation vacuum vague val vale valencia valentine valid valley valuable value valve vampire
    van vancouver vanessa vanished var variable variant variations varieties variety various varsity vary vast vatican
    vault vector vegas vegetables vegetation vehicle veins velocity velvet venezuela venice venture venue vera verb
    verbal vermont vernon veronica verse version versus vertical very vessel veteran vfl via vic vicar vice vicinity
    victims victor victoria victorian victories victory video vienna vietnam vietnamese view viewers vii viii viking
    viktor villa village villagers villain vince vincent vintage vinyl viola violation violence violent violet violin
    viral virgin virginia virtual virtue virus visa viscount visible vision visit visitors vista visual vital vladimir
    vocalist vocals vocational voice void voivodeship vol volcanic volcano volleyball voltage volume voluntary volunteer
    von vote voted voters voting vowel voyage vulnerable wade wage wagner wagon waist waiting wake waking wales walked
    walker wall wallace walsh walt walter wandering wang wanna want war ward warden warehouse warfare warm warmth warner
    warning warrant warren warriors wars warsaw wartime warwick was washed washington wasn waste watch water watershed
    watson watts wave waved waving way wayne ways weak weakened weakness wealth wealthy weapons wearing weather web webb
    weber website webster wedding wednesday week weekend wei weighed weight weird welcome welfare well wellington welsh
    wendy went were weren werewolf wesley west western westminster weston wet whale what whatever wheat wheel wheelchair
    wheeler when whenever where whereas whereby wherever whether which while whilst whip whipped whispered whistle white
    whitney who whoever whole whom whose why wicked wickets wide widened wider widespread widow width wife wild
    wilderness wildlife wilhelm will william willie willow wilson wimbledon win winchester wind window windsor wine wing
    wingspan winner winning winnipeg wins winston winter wipe wiped wire wireless wisconsin wisdom wise wish witch with
    withdraw withdrawal withdrawn withdrew within without witness witnesses wives wizard woke wolf wolves woman women
    won wonder wonderful wong wood wooden woodland woody wool worcester words wore work workers workshop world worldwide
    worn worried worry worse worship worst worth worthy would wouldn wounded wow wrap wrapped wreck wrestler wrestling
    wright wrist writer writing written wrong wrote wwe www wyatt wyoming xavier xbox yacht yale yan yang yanked yards
    yeah years yelled yellow yes yesterday yet yield yoga york yorkshire you young younger youngest your yourself youth
    youtube yuan yugoslav yugoslavia zach zack zagreb zane zealand zero zhang zimbabwe zoe zombie zone zoo zurich
"""
